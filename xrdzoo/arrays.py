"""Named numpy arrays that hold what a fitted member learned, saved and loaded by name without torch.

A fitted predictor (retrieval, templates) runs no network, so it keeps its state in numpy arrays: loading one costs
reading its file, not importing torch. Its state dict reads like a torch module's (``scorer.0.weight``), so a
checkpoint stores either kind the same way.
"""

from __future__ import annotations

import numpy as np


class Arrays:
    """An object whose learned state is the arrays it registers (:meth:`register_array`), read and set as
    attributes, plus those of its attributes that are themselves ``Arrays`` (their names prefixed). Arrays sized by
    the data (``sized_by_data``, the default) take the shape a loaded state gives them; the others (a small network's
    weights, sized by its options) must match. Names in ``added_later`` may be absent from older files (see
    :meth:`load_state_dict`)."""

    sized_by_data = True
    added_later: tuple[str, ...] = ()

    def __init__(self):
        object.__setattr__(self, "_arrays", {})

    def register_array(self, name: str, value: np.ndarray) -> None:
        """Keep ``value`` as the learned array ``name`` (an attribute of that name reads it)."""
        self._arrays[name] = np.asarray(value)

    def __getattr__(self, name: str):
        arrays = self.__dict__.get("_arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name in self.__dict__.get("_arrays", {}):
            self._arrays[name] = np.asarray(value)
        else:
            object.__setattr__(self, name, value)

    def _children(self) -> dict[str, Arrays]:
        return {name: value for name, value in vars(self).items() if isinstance(value, Arrays)}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every learned array by name, those of ``Arrays`` attributes as ``<attribute>.<name>``."""
        state = dict(self._arrays)
        for prefix, child in self._children().items():
            state |= {f"{prefix}.{name}": array for name, array in child.state_dict().items()}
        return state

    def fixed_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shapes a loaded state must match: those of arrays not ``sized_by_data``."""
        shapes = {} if self.sized_by_data else {name: array.shape for name, array in self._arrays.items()}
        for prefix, child in self._children().items():
            shapes |= {f"{prefix}.{name}": shape for name, shape in child.fixed_shapes().items()}
        return shapes

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set every learned array from ``state``, floating-point values cast to the type of the array they replace
        (a file stored as float16 loads as float32); a ``ValueError`` names missing, unexpected or misshapen arrays,
        and nothing is set then. Names in ``added_later`` that ``state`` lacks are filled by
        :meth:`_fill_added_later`."""
        expected = self.state_dict()
        state = {**self._fill_added_later(state), **state}
        missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
        if missing or unexpected:
            raise ValueError(f"missing {missing[:3]}, unexpected {unexpected[:3]} arrays")
        for name, shape in self.fixed_shapes().items():
            if tuple(np.shape(state[name])) != shape:
                raise ValueError(f"array {name!r} has shape {tuple(np.shape(state[name]))}, the options give {shape}")
        for name, value in state.items():
            value, kind = np.asarray(value), expected[name].dtype
            self._assign(name, value.astype(kind) if value.dtype.kind == "f" and kind.kind == "f" else value)
        self._arrays_changed()

    def _assign(self, name: str, value: np.ndarray) -> None:
        if name in self._arrays:
            self._arrays[name] = value
        else:
            prefix, rest = name.split(".", 1)
            self._children()[prefix]._assign(rest, value)

    def _fill_added_later(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Arrays for the ``added_later`` names an older ``state`` lacks; members that have such names say what they
        are."""
        return {}

    def _arrays_changed(self) -> None:
        """Called after new arrays are loaded (members also call it after fitting): drop what was derived from the
        old ones."""


def strings_array(strings: list[str]) -> np.ndarray:
    """Strings (without newlines) as one uint8 array of their UTF-8 text joined by newlines."""
    return np.frombuffer("\n".join(strings).encode(), dtype=np.uint8).copy()


def array_strings(array: np.ndarray) -> list[str]:
    """The strings :func:`strings_array` stored."""
    text = np.asarray(array, dtype=np.uint8).tobytes().decode()
    return text.split("\n") if text else []
