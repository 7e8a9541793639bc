"""Building zoo members by name: a network from a registered encoder and backbone (:func:`create_model`), a
predictor from a registered factory (:func:`create_predictor`), and either from a checkpoint's config
(:func:`from_config`), each with the config that rebuilds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xrdzoo import registry
from xrdzoo.xrd.pattern import N_POINTS

if TYPE_CHECKING:
    from xrdzoo.contracts import FittedPredictor
    from xrdzoo.model import XRDModel


def create_model(
    encoder: str = "onehot",
    backbone: str = "resnet20",
    *,
    encoder_options: dict | None = None,
    **backbone_options: Any,
) -> XRDModel:
    """Build a model from registered parts, e.g. ``create_model("onehot", "resnet20", dropout=0.1)``.

    ``backbone_options`` go to the backbone's factory and ``encoder_options`` to the encoder's; any registered
    name works, third-party plugins included (``package:name`` picks one of two clashing names).
    """
    from xrdzoo.model import XRDModel

    enc = registry.create("encoders", encoder, **(encoder_options or {}))
    net = registry.create("backbones", backbone, tuple(enc.shape), out_dim=N_POINTS, **backbone_options)
    config = {
        "encoder": encoder,
        "encoder_options": enc.config(),
        "backbone": backbone,
        "backbone_options": backbone_options,
        "packages": {kind: _provider(kind, name) for kind, name in (("encoders", encoder), ("backbones", backbone))},
    }
    return XRDModel(enc, net, config)


def create_predictor(name: str, **options: Any) -> FittedPredictor:
    """Build a registered predictor (a zoo member fitted on structures, e.g. ``retrieval``, ``template``)."""
    member = registry.create("predictors", name, **options)
    member.config = {"predictor": name, "options": options, "packages": {"predictors": _provider("predictors", name)}}
    return member


def from_config(config: dict) -> XRDModel | FittedPredictor:
    """The (unfitted, untrained) model a checkpoint's ``model`` config describes: a predictor or a network."""
    if "predictor" in config:
        return create_predictor(config["predictor"], **config["options"])
    return create_model(config["encoder"], config["backbone"], encoder_options=config["encoder_options"],
                        **config["backbone_options"])


def _provider(kind: str, name: str) -> str:
    entry, _ = registry.find(kind, name)
    return f"{entry.package} {entry.version}"
