"""xrdzoo: predict powder X-ray diffraction patterns from chemical formulas, and a model zoo around it."""

from __future__ import annotations

from functools import partial

from xrdzoo.version import __version__

DEFAULT_MODEL = "template_learned.mp_all"  # the shipped weights `xrdzoo predict` uses unless told otherwise

from xrdzoo import registry  # noqa: E402
from xrdzoo.contracts import Predictor  # noqa: E402
from xrdzoo.xrd.frame import Frame  # noqa: E402
from xrdzoo.xrd.pattern import Pattern  # noqa: E402

_LAZY_NAMES = {"create_model": "xrdzoo.builder", "create_predictor": "xrdzoo.builder", "XRDModel": "xrdzoo.model"}


def __getattr__(name: str):
    """The builders and the network class, imported on first use: a command that never builds a network (predict or
    identify with a fitted predictor, simulate) starts without paying for torch's import."""
    if name in _LAZY_NAMES:
        import importlib

        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'xrdzoo' has no attribute {name!r}")


list_encoders = partial(registry.list_names, "encoders")
list_backbones = partial(registry.list_names, "backbones")
list_predictors = partial(registry.list_names, "predictors")
list_losses = partial(registry.list_names, "losses")
list_metrics = partial(registry.list_names, "metrics")
list_weights = partial(registry.list_names, "weights")


def load(name_or_path: str) -> Predictor:
    """A zoo member (network or predictor) from a checkpoint path or a pretrained weight name (hash-checked;
    downloaded if needed); a weight shipped as several files (its ``parts``) comes back as one member."""
    from xrdzoo import hub

    return hub.load_member(name_or_path)


def predict(formulas: list[str] | str, model: str | Predictor = DEFAULT_MODEL, frame: Frame | None = None,
            batch_size: int = 64, precision: str = "float32") -> Pattern:
    """Predicted XRD patterns of chemical formulas as one batch :class:`Pattern` (``len`` n; a single string is one
    formula, n = 1): on the model frame (Cu K-alpha, 1,024 bins over 2-theta 0..180 degrees, each row's largest
    100; ``.intensities`` is the ``(n, N_POINTS)`` array), or drawn on ``frame``, e.g. ``Frame.of("MoKa",
    fwhm=0.1)``, as ``xrdzoo predict --wavelength MoKa --fwhm 0.1`` writes them. Raises
    ``xrdzoo.encoders.EncodingError`` at the first formula the model cannot take."""
    formulas = [formulas] if isinstance(formulas, str) else list(formulas)
    member = load(model) if isinstance(model, str) else model
    patterns = Pattern.from_frame(member.predict(formulas, batch_size, precision))
    return patterns if frame is None else frame.draw(patterns)


__all__ = ["XRDModel", "create_model", "create_predictor", "load", "predict", "Frame", "Pattern", "DEFAULT_MODEL",
           "list_encoders", "list_backbones", "list_predictors", "list_losses", "list_metrics", "list_weights",
           "registry", "__version__"]
