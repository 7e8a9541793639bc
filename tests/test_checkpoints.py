"""Checkpoint integrity covers what changes predictions (tensors, settings, the encoder's elements), metadata is
checked before any tensor is allocated, and `export` refuses what would lose or misplace a weight."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import xrdzoo
from xrdzoo import checkpoint, hub
from xrdzoo.checkpoint import CheckpointError
from xrdzoo.cli import app
from xrdzoo.errors import InputError
from xrdzoo.publish import export

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _edit(path: Path, change) -> Path:
    """Rewrite a checkpoint's metadata JSON by hand (``change`` edits the dict in place), its tensors untouched."""
    with safe_open(str(path), framework="pt") as file:
        meta = json.loads(file.metadata()[checkpoint.METADATA_KEY])
    change(meta)
    save_file(load_file(str(path)), str(path), metadata={checkpoint.METADATA_KEY: json.dumps(meta)})
    return path


@pytest.fixture
def knn(tmp_path) -> Path:
    torch.manual_seed(0)
    model = xrdzoo.create_model("fraction", "knn", k=5)
    model.backbone.fit(torch.rand(40, *model.encoder.shape), torch.rand(40, 1024))
    return checkpoint.save(tmp_path / "knn.safetensors", model)


@pytest.fixture
def mlp(tmp_path) -> Path:
    torch.manual_seed(0)
    return checkpoint.save(tmp_path / "mlp.safetensors", xrdzoo.create_model("onehot", "mlp", hidden=[16]))


# --- the settings digest --------------------------------------------------------------------------------------


def test_an_edited_setting_is_caught_on_load(knn):
    before = checkpoint.read_model(knn).predict(["BaTiO3"])
    _edit(knn, lambda meta: meta["model"]["backbone_options"].update(k=1))
    with pytest.raises(CheckpointError, match="its model settings do not match the digest saved with them"):
        checkpoint.read_model(knn)
    _edit(knn, lambda meta: meta.pop(checkpoint.SETTINGS_KEY))  # as a file from before the settings digest
    assert not np.allclose(checkpoint.read_model(knn).predict(["BaTiO3"]), before)  # what the digest guards against


def test_swapped_encoder_elements_are_caught_on_load(mlp):
    def swap(meta):
        elements = meta["model"]["encoder_options"]["elements"]
        i, j = elements.index("Ba"), elements.index("Sr")
        elements[i], elements[j] = elements[j], elements[i]

    _edit(mlp, swap)
    result = runner.invoke(app, ["predict", "BaTiO3", "--checkpoint", str(mlp)])
    assert result.exit_code == 1 and "its model settings do not match the digest" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_settings_digest_is_canonical_json_of_the_model_config(mlp):
    meta = checkpoint.read_metadata(mlp)
    assert meta[checkpoint.SETTINGS_KEY] == checkpoint.settings_digest(meta["model"])
    reordered = dict(reversed(list(meta["model"].items())))
    assert checkpoint.settings_digest(reordered) == meta[checkpoint.SETTINGS_KEY]


def test_shipped_weights_load_unchanged_and_match_their_manifest():
    manifest, predating = {c.file: c for c in hub.builtin_weights()}, 0
    for path in sorted((ROOT / "weights").glob("*.safetensors")):
        assert hub.verify(path, manifest[path.name]), path.name  # the shipped bytes are what the manifest says
        predating += checkpoint.SETTINGS_KEY not in checkpoint.read_metadata(path)
        checkpoint.read_model(path)  # loads: its settings digest, where it has one, matches its settings
    assert predating  # weights written before the settings digest load too


# --- the schema, checked before tensors are allocated ---------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (lambda meta: meta.pop("model"), "lacks its metadata's 'model' (a dict)"),
    (lambda meta: meta["model"].pop("backbone_options"), "lacks its metadata's 'model.backbone_options'"),
    (lambda meta: meta["model"].update(encoder=3), "has a int for its metadata's 'model.encoder' (a str)"),
    (lambda meta: meta["model"].update(packages=[]), "has a list for its metadata's 'model.packages'"),
    (lambda meta: meta.update({checkpoint.DIGEST_KEY: None}), "lacks its metadata's 'tensors_sha256'"),
])
def test_metadata_that_lacks_a_section_is_one_clear_error(mlp, change, message):
    _edit(mlp, lambda meta: (meta.pop(checkpoint.SETTINGS_KEY), change(meta)))
    with pytest.raises(CheckpointError, match=re.escape(message)):
        checkpoint.read_model(mlp)
    result = runner.invoke(app, ["predict", "BaTiO3", "--checkpoint", str(mlp)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "Traceback" not in result.output


def test_a_predictor_config_is_checked_too(tmp_path):
    path = checkpoint.save(tmp_path / "retrieval.safetensors", xrdzoo.create_predictor("retrieval"))
    _edit(path, lambda meta: (meta.pop(checkpoint.SETTINGS_KEY), meta["model"].pop("options")))
    with pytest.raises(CheckpointError, match="lacks its metadata's 'model.options'"):
        checkpoint.read_metadata(path)


HUGE = """
import json, resource, sys
from xrdzoo import checkpoint
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    checkpoint.read_model(sys.argv[1])
except checkpoint.CheckpointError as error:
    print(json.dumps({"error": str(error), "grew_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}))
"""


def test_a_config_asking_for_huge_layers_is_refused_before_they_are_allocated(mlp):
    _edit(mlp, lambda meta: (meta.pop(checkpoint.SETTINGS_KEY),  # as a file from before the settings digest
                             meta["model"]["backbone_options"].update(hidden=[100_000])))  # 750 MB of float32
    proc = subprocess.run([sys.executable, "-c", HUGE, str(mlp)], capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "has shape (16,), the config gives (100000,)" in out["error"]
    assert out["grew_kib"] < 250 * 1024, out  # far below what the config asks for


def test_a_file_with_other_tensors_than_its_config_is_refused(mlp):
    tensors = load_file(str(mlp))
    tensors["extra"] = torch.zeros(3)
    with safe_open(str(mlp), framework="pt") as file:
        save_file(tensors, str(mlp), metadata=file.metadata())
    with pytest.raises(CheckpointError, match=r"does not match its config: missing \[\], unexpected \['extra'\]"):
        checkpoint.read_model(mlp)


# --- export ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int8", "nonsense", "float64", "bool"])
def test_export_refuses_lossy_and_unknown_dtypes(mlp, tmp_path, dtype):
    result = runner.invoke(app, ["export", str(mlp), "--name", "mlp.test", "--folder", str(tmp_path / "out"),
                                 "--dtype", dtype])
    assert result.exit_code == 1 and f"--dtype {dtype!r} is not one of float16, bfloat16, float32" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["../escaped", "sub/name", "/abs/name", ".hidden", "", "a\\b"])
def test_export_refuses_names_with_paths_and_writes_nothing(mlp, tmp_path, name):
    folder = tmp_path / "out"
    with pytest.raises(InputError, match="must be a weight name such as"):
        export(mlp, folder, name)
    assert not folder.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mlp.safetensors"]


def test_export_replaces_an_existing_different_file_only_with_force(mlp, knn, tmp_path):
    folder = tmp_path / "out"
    first = export(mlp, folder, "model.test")
    weight = folder / first.file
    same = export(mlp, folder, "model.test")  # the same weight again: the same bytes, allowed
    assert same.sha256 == first.sha256
    result = runner.invoke(app, ["export", str(knn), "--name", "model.test", "--folder", str(folder)])
    assert result.exit_code == 1 and "exists and holds another weight" in result.output and "--force" in result.output
    assert hub.verify(weight, first) and sorted(p.name for p in folder.iterdir()) == [weight.name]
    result = runner.invoke(app, ["export", str(knn), "--name", "model.test", "--folder", str(folder), "--force"])
    assert result.exit_code == 0, result.output
    assert not hub.verify(weight, first) and "knn" == checkpoint.read_metadata(weight)["model"]["backbone"]


@pytest.mark.parametrize("text", ["{not json", '{"weights": {}}', '{"other": []}', '{"weights": [{"file": "x"}]}',
                                  "[]"])
def test_export_writes_nothing_when_the_manifest_is_bad(mlp, tmp_path, text):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(text)
    result = runner.invoke(app, ["export", str(mlp), "--name", "mlp.test", "--folder", str(tmp_path / "out"),
                                 "--manifest", str(manifest)])
    assert result.exit_code == 1 and "is not a weights manifest" in result.output and "nothing was written" in \
        result.output
    assert len(result.output.strip().splitlines()) == 1
    assert manifest.read_text() == text and not (tmp_path / "out").exists()


def test_export_never_writes_over_its_own_checkpoint(mlp):
    before = mlp.read_bytes()
    with pytest.raises(InputError, match="is also an input of this command"):
        export(mlp, mlp.parent, mlp.stem, force=True)
    assert mlp.read_bytes() == before


def test_an_exported_weight_loads_with_both_digests(mlp, tmp_path):
    config = export(mlp, tmp_path / "out", "mlp.test", dtype="bfloat16")
    meta = checkpoint.read_metadata(tmp_path / "out" / config.file)
    assert meta[checkpoint.SETTINGS_KEY] == checkpoint.settings_digest(meta["model"]) and meta["weight"] == "mlp.test"
    assert np.abs(checkpoint.read_model(tmp_path / "out" / config.file).predict(["BaTiO3"])
                  - checkpoint.read_model(mlp).predict(["BaTiO3"])).max() < 2.0
