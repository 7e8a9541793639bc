"""Zoo members that map formulas to patterns through known structures: retrieval and template substitution.

Each is a *predictor*, registered in the entry-point group ``xrdzoo.predictors`` and built by
``xrdzoo.create_predictor(name, **options)``. The contract they share with the encoder + backbone network
(``xrdzoo.model.XRDModel``), written as ``xrdzoo.contracts.FittedPredictor``:

- ``config``: JSON-able, enough to rebuild the member (stored in the checkpoint);
- ``fit(train, val)``: learn from the training split of a ``xrdzoo.data.Dataset`` (its structures and patterns),
  returning a few validation figures; what it learns lives in tensors (``state_dict``), saved as safetensors;
- ``encodable(formulas)``: indices of the formulas it answers and the reason for each it refuses;
- ``predict(formulas, batch_size, precision)``: patterns ``(n, 1024)`` on the 0..100 scale;
- ``explain(formulas)``: how each answer was made (which template, which fallback), one line each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from xrdzoo.buffers import ResizableBuffers
from xrdzoo.encoders import EncodingError
from xrdzoo.predictors.chemistry import formula_of


class PredictorBase(ResizableBuffers):
    """Base of the fitted members (``xrdzoo.contracts.FittedPredictor``): buffers take the size a loaded state dict
    gives them, formulas are checked by :func:`~xrdzoo.predictors.chemistry.formula_of`."""

    config: dict

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` has run (or a fitted state was loaded)."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"the {self.config['predictor']} predictor is not fitted: train it with "
                               f"`xrdzoo train --predictor {self.config['predictor']} --data ...`")

    def encodable(self, formulas: Sequence[str]) -> tuple[list[int], dict[str, str]]:
        """Indices of the formulas this member answers, and the reason for each it cannot."""
        keep, errors = [], {}
        for i, formula in enumerate(formulas):
            try:
                formula_of(formula)
                keep.append(i)
            except EncodingError as error:
                errors[formula] = str(error)
        return keep, errors


def strings_tensor(strings: Sequence[str]) -> torch.Tensor:
    """Strings (without newlines) as one uint8 tensor of their UTF-8 text joined by newlines."""
    return torch.frombuffer(bytearray("\n".join(strings).encode()), dtype=torch.uint8).clone()


def tensor_strings(tensor: torch.Tensor) -> list[str]:
    """The strings :func:`strings_tensor` stored."""
    text = bytes(tensor.numpy().astype(np.uint8)).decode()
    return text.split("\n") if text else []
