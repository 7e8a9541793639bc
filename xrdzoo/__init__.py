"""xrdzoo: predict powder X-ray diffraction patterns from chemical formulas, and a model zoo around it."""

from __future__ import annotations

from functools import partial

from xrdzoo.version import __version__

DEFAULT_MODEL = "template_learned.mp_all"  # the shipped weights `xrdzoo predict` uses unless told otherwise

import numpy as np  # noqa: E402

from xrdzoo import registry  # noqa: E402
from xrdzoo.contracts import Predictor  # noqa: E402
from xrdzoo.model import XRDModel, create_model, create_predictor  # noqa: E402

list_encoders = partial(registry.list_names, "encoders")
list_backbones = partial(registry.list_names, "backbones")
list_predictors = partial(registry.list_names, "predictors")
list_losses = partial(registry.list_names, "losses")
list_metrics = partial(registry.list_names, "metrics")
list_weights = partial(registry.list_names, "weights")


def load(name_or_path: str) -> Predictor:
    """A zoo member (network or predictor) from a checkpoint path or a pretrained weight name (hash-checked;
    downloaded if needed); a weight shipped as several files (its ``parts``) comes back as one member."""
    from pathlib import Path

    from xrdzoo import checkpoint, hub

    member = checkpoint.read_model(hub.resolve(name_or_path))
    if not Path(name_or_path).expanduser().is_file():  # a weight name: join its parts
        for part in hub.get_config(name_or_path).parts:
            member.join(checkpoint.read_model(hub.resolve(part)))
    return member


def predict(formulas: list[str] | str, model: str | Predictor = DEFAULT_MODEL) -> np.ndarray:
    """Predicted XRD patterns ``(n, 1024)`` over 2-theta 0..180 degrees (max 100) for chemical formulas; a single
    string is one formula (``n = 1``)."""
    formulas = [formulas] if isinstance(formulas, str) else list(formulas)
    return (load(model) if isinstance(model, str) else model).predict(formulas)


__all__ = ["XRDModel", "create_model", "create_predictor", "load", "predict", "DEFAULT_MODEL", "list_encoders",
           "list_backbones", "list_predictors", "list_losses", "list_metrics", "list_weights", "registry",
           "__version__"]
