"""Damage and misuse that must give one clear error: flipped bytes in checkpoints and datasets, a build over its
own source, a plot into a folder; the CLI's error family (user errors one line, bugs a traceback)."""

from __future__ import annotations

import ast
import os
import shutil
import stat
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import xrdzoo
from xrdzoo import checkpoint
from xrdzoo.checkpoint import CheckpointError
from xrdzoo.cli import app
from xrdzoo.data import DatasetError, build_dataset, load_dataset
from xrdzoo.errors import XRDZooError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def model():
    return xrdzoo.create_model("fraction", "mlp", hidden=[16])


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))


def test_a_flipped_tensor_byte_is_caught_on_load(model, tmp_path):
    path = checkpoint.save(tmp_path / "m.safetensors", model)
    assert checkpoint.read_metadata(path)[checkpoint.DIGEST_KEY] == checkpoint.digest(model.state_dict())
    _flip(path, path.stat().st_size - 100)  # in the last tensor's data
    with pytest.raises(CheckpointError, match="is damaged: its tensors do not match the digest saved with them"):
        checkpoint.read_model(path)
    result = runner.invoke(app, ["predict", "BaTiO3", "--checkpoint", str(path)])
    assert result.exit_code == 1 and "is damaged" in result.output and "Traceback" not in result.output


def test_a_checkpoint_gets_the_permissions_of_any_new_file(model, tmp_path):
    old = os.umask(0o027)  # a group-shared lab machine: the group may read, others may not
    try:
        path = checkpoint.save(tmp_path / "m.safetensors", model)
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o640


def test_shipped_weights_without_a_digest_still_load():
    shipped = sorted((ROOT / "weights").glob("*.safetensors"))
    older = [p for p in shipped if checkpoint.DIGEST_KEY not in checkpoint.read_metadata(p)]
    assert older and len(older) < len(shipped)  # weights exported before digests; their sha256 is in the manifest
    for path in (older[0], ROOT / "weights" / f"{xrdzoo.DEFAULT_MODEL}.safetensors"):
        assert checkpoint.read_model(path).predict(["BaTiO3"]).shape == (1, 1024)


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path) -> Path:
    copy = tmp_path / "copy.npz"
    shutil.copy(tiny_dataset, copy)
    return copy


def test_a_deflate_bit_flip_in_a_dataset_is_one_clean_error(dataset_copy):
    with zipfile.ZipFile(dataset_copy) as archive:
        info = archive.getinfo("patterns.npy")
    _flip(dataset_copy, info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2)
    with pytest.raises(DatasetError, match="is damaged .*; build it again with `xrdzoo data build`"):
        load_dataset(dataset_copy)
    for args in (["data", "info", str(dataset_copy)], ["evaluate", xrdzoo.DEFAULT_MODEL, "--data",
                                                      str(dataset_copy)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "is damaged" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_build_never_overwrites_its_source_or_leaves_a_partial_file(structure_dir, tmp_path):
    source = tmp_path / "source.json"
    source.write_text("[]")
    result = runner.invoke(app, ["data", "build", str(source), "--output", str(source)])
    assert result.exit_code == 1 and "is also an input of this command" in result.output
    assert source.read_text() == "[]"
    folder = tmp_path / "existing"
    folder.mkdir()
    with pytest.raises(DatasetError, match="is a folder"):
        build_dataset(structure_dir, folder, workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "source.json"]


def test_plot_into_a_folder_reports_no_file(model, tmp_path):
    path = checkpoint.save(tmp_path / "m.safetensors", model)
    folder = tmp_path / "plots"
    folder.mkdir()
    for target in (folder, tmp_path / "noext"):
        result = runner.invoke(app, ["predict", "BaTiO3", "--checkpoint", str(path), "--plot", str(target)])
        assert result.exit_code == 1 and "give a file name ending in .png" in result.output
        assert "wrote" not in result.output
    assert list(folder.iterdir()) == [] and not (tmp_path / "noext.png").exists()


def test_simulate_file_errors_are_one_error_line(tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text("data_nothing\n_cell_length_a oops\n")
    result = runner.invoke(app, ["simulate", str(bad)])
    assert result.exit_code == 1 and result.output.startswith("Error: cannot read a structure from")
    assert len(result.output.strip().splitlines()) == 1  # not a usage box


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch):
    def broken(name):
        raise ValueError("a bug, not the user's doing")

    monkeypatch.setattr(xrdzoo, "load", broken)
    result = runner.invoke(app, ["predict", "BaTiO3"])
    assert isinstance(result.exception, ValueError) and "Error:" not in result.output
    monkeypatch.undo()
    result = runner.invoke(app, ["predict", "BaTIO3"])
    assert result.exit_code == 2 and "did you mean Ti?" in result.output


@pytest.mark.parametrize("error", ["EncodingError", "CheckpointError", "PluginError", "WeightError",
                                   "DatasetError", "SimulationError", "InputError"])
def test_the_packages_errors_are_one_family(error):
    from xrdzoo import checkpoint, data, encoders, errors, hub, registry
    from xrdzoo.xrd import simulate

    found = [getattr(m, error) for m in (checkpoint, data, encoders, errors, hub, registry, simulate)
             if hasattr(m, error)]
    assert found and all(issubclass(e, XRDZooError) for e in found)


def test_every_imported_package_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    declared = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requirements}
    imported = set()
    for path in (ROOT / "xrdzoo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) - {"xrdzoo"} <= declared
