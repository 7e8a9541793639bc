"""The model and its checkpoints: build from registered parts, save, load, and refuse bad files clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import xrdzoo
from xrdzoo import checkpoint
from xrdzoo.checkpoint import CheckpointError
from xrdzoo.registry import PluginError

SMALL = {"encoder_options": {"max_count": 8}}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return xrdzoo.create_model("onehot", "resnet10", **SMALL)


def test_create_model_predicts_normalised_patterns(model):
    patterns = model.predict(["BaTiO3", "NaCl", "MgAl2O4"])
    assert patterns.shape == (3, 1024)
    assert np.allclose(patterns.max(axis=1), 100.0) and patterns.min() >= 0.0
    assert model.config["backbone"] == "resnet10" and model.config["packages"]["backbones"].startswith("xrdzoo ")


def test_checkpoint_round_trip_is_exact(model, tmp_path):
    path = checkpoint.save(tmp_path / "m.safetensors", model, {"note": "hello"})
    loaded = xrdzoo.load(str(path))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert np.array_equal(model.predict(["SrTiO3"]), loaded.predict(["SrTiO3"]))
    assert loaded.metadata["note"] == "hello" and loaded.config == json.loads(json.dumps(model.config))


def test_half_precision_storage_is_smaller_and_close(model, tmp_path):
    full = checkpoint.save(tmp_path / "f32.safetensors", model)
    half = checkpoint.save(tmp_path / "f16.safetensors", model, dtype="float16")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    a, b = xrdzoo.load(str(full)).predict(["BaTiO3"]), xrdzoo.load(str(half)).predict(["BaTiO3"])
    assert np.corrcoef(a[0], b[0])[0, 1] > 0.999


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.read_model(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all", b"\xff" * 64])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        checkpoint.read_model(path)


def test_truncated_checkpoint(model, tmp_path):
    path = checkpoint.save(tmp_path / "m.safetensors", model)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        checkpoint.read_model(path)


def test_safetensors_without_xrdzoo_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="no xrdzoo metadata"):
        checkpoint.read_model(path)


def _rewrite_config(path, **changes):
    """A copy of a checkpoint whose model config (with a settings digest to match, as a faulty writer would make it)
    says something else than its tensors."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["xrdzoo"])
    meta["model"].update(changes)
    meta[checkpoint.SETTINGS_KEY] = checkpoint.settings_digest(meta["model"])
    out = path.with_name("changed.safetensors")
    save_file(load_file(str(path)), str(out), metadata={"xrdzoo": json.dumps(meta)})
    return out


def test_tensors_that_do_not_match_the_config(model, tmp_path):
    path = checkpoint.save(tmp_path / "m.safetensors", model)
    with pytest.raises(CheckpointError, match="does not match its config"):
        checkpoint.read_model(_rewrite_config(path, backbone="resnet20"))
    wider = _rewrite_config(path, encoder_options={**model.config["encoder_options"], "max_count": 9})
    with pytest.raises(CheckpointError, match="has shape"):
        checkpoint.read_model(wider)


def test_checkpoint_needing_a_missing_plugin(model, tmp_path):
    path = _rewrite_config(checkpoint.save(tmp_path / "m.safetensors", model), backbone="fancynet")
    with pytest.raises(PluginError, match="no backbone named 'fancynet'.*plugin package may be missing"):
        checkpoint.read_model(path)
