"""Modules whose buffers hold what they learned from data, of a size only the data decides."""

from __future__ import annotations

from torch import nn


class ResizableBuffers(nn.Module):
    """A module whose buffers take the size a loaded state dict gives them (a fresh module does not know how many
    training rows there were); fitted baselines and predictors are built on it. Buffers named in ``added_later``
    may be absent from files saved before they existed; the module fills them when it loads such a file."""

    added_later: tuple[str, ...] = ()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, buffer in self._buffers.items():
            incoming = state_dict.get(prefix + name)
            if buffer is not None and incoming is not None and incoming.shape != buffer.shape:
                self._buffers[name] = buffer.new_empty(incoming.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
