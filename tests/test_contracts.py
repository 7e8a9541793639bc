"""Every registered component meets its contract in xrdzoo.contracts (as timm tests every registered model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    if backbone in ("mean", "knn"):
        model.backbone.fit(model.encoder.encode(["SrTiO3", "KCl"]), torch.rand(2, 1024))
    answers = model.answer(["BaTiO3", "Qq2O", "NaCl"])  # one encoding pass: what it kept, what it refused and why
    assert answers.kept == [0, 2] and list(answers.refused) == ["Qq2O"] and "Qq" in answers.refused["Qq2O"]
    assert np.allclose(answers.patterns.intensities, model.predict(["BaTiO3", "NaCl"]), atol=1e-4)
    assert answers.how == [f"network fraction + {backbone}, from the formula alone"] * 2


def test_the_template_members_know_their_structures_and_retrieval_does_not():
    assert isinstance(xrdzoo.create_predictor("template"), contracts.KnowsStructures)
    assert not isinstance(xrdzoo.create_predictor("retrieval"), contracts.KnowsStructures)
