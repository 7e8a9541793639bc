"""Every registered component meets its contract in xrdzoo.contracts (as timm tests every registered model)."""

from __future__ import annotations

import pytest

import xrdzoo
from xrdzoo import contracts, registry


@pytest.mark.parametrize("name", registry.list_names("encoders"))
def test_every_encoder_meets_the_encoder_contract(name):
    encoder = registry.create("encoders", name)
    assert isinstance(encoder, contracts.Encoder)
    assert tuple(encoder.encode(["BaTiO3"]).shape) == (1, *encoder.shape)


@pytest.mark.parametrize("name", registry.list_names("predictors"))
def test_every_predictor_meets_the_fitted_predictor_contract(name):
    assert isinstance(xrdzoo.create_predictor(name), contracts.FittedPredictor)


@pytest.mark.parametrize("backbone", ["resnet10", "mlp", "mean", "knn"])
def test_the_network_meets_the_predictor_contract_and_fitted_backbones_say_so(backbone):
    model = xrdzoo.create_model("fraction", backbone)
    assert isinstance(model, contracts.Predictor)
    assert isinstance(model.backbone, contracts.FittedBackbone) == (backbone in ("mean", "knn"))
