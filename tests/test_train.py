"""Training, evaluation and prediction end to end on a small dataset xrdzoo builds from prototype structures."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import xrdzoo
import xrdzoo.evaluate
from xrdzoo.cli import app
from xrdzoo.data import build_dataset, load_dataset
from xrdzoo.errors import InputError
from xrdzoo.xrd.pattern import TWO_THETA
from xrdzoo.train import TrainConfig, train

SMALL = {"encoder_options": {"max_count": 8}}
runner = CliRunner()


def config(data, out, **changes) -> TrainConfig:
    settings = dict(data=str(data), output=str(out), backbone="resnet10", epochs=3, batch_size=8, lr=2e-3,
                    patience=50, **SMALL)
    return TrainConfig(**{**settings, **changes})


def test_loss_falls(tiny_dataset, tmp_path):
    best = train(config(tiny_dataset, tmp_path, epochs=6), progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 6
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    meta = xrdzoo.load(str(best)).metadata
    assert meta["data"]["hash"] == load_dataset(tiny_dataset).hash
    assert meta["train"]["config"]["backbone"] == "resnet10" and "val" in meta["metrics"]


def test_same_seed_same_weights(tiny_dataset, tmp_path):
    a = train(config(tiny_dataset, tmp_path / "a", epochs=2), progress=False)
    b = train(config(tiny_dataset, tmp_path / "b", epochs=2), progress=False)
    ta, tb = load_file(str(a)), load_file(str(b))
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_resume_continues_exactly(tiny_dataset, tmp_path):
    straight = train(config(tiny_dataset, tmp_path / "straight", epochs=4), progress=False)
    train(config(tiny_dataset, tmp_path / "split", epochs=2), progress=False)
    train(config(tiny_dataset, tmp_path / "split", epochs=4), resume=True, progress=False)
    history = json.loads((tmp_path / "split" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    ta, tb = load_file(str(tmp_path / "straight" / "last.safetensors")), load_file(str(tmp_path / "split" /
                                                                                      "last.safetensors"))
    assert all(torch.allclose(ta[k], tb[k], atol=1e-6) for k in ta)
    assert straight.exists()


def test_a_state_one_epoch_behind_the_other_files_resumes_exactly(tiny_dataset, tmp_path):
    """A kill after an epoch's checkpoints but before its state: the resume does that epoch again, to the same end."""
    fast = {"encoder": "fraction", "backbone": "mlp", "backbone_options": {"hidden": [32]}, "encoder_options": {}}
    train(config(tiny_dataset, tmp_path / "straight", epochs=4, **fast), progress=False)
    run = tmp_path / "killed"
    train(config(tiny_dataset, run, epochs=2, **fast), progress=False)
    state = (run / "train_state.safetensors").read_bytes()
    train(config(tiny_dataset, run, epochs=3, **fast), resume=True, progress=False)
    (run / "train_state.safetensors").write_bytes(state)  # epoch 3's best, last and history are written, not its state
    train(config(tiny_dataset, run, epochs=4, **fast), resume=True, progress=False)
    for name in ("last.safetensors", "best.safetensors"):
        a, b = load_file(str(tmp_path / "straight" / name)), load_file(str(run / name))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert json.loads((run / "history.json").read_text()) == json.loads((tmp_path / "straight" /
                                                                         "history.json").read_text())


def test_bfloat16_training_learns_and_resume_may_change_only_runtime_settings(tiny_dataset, tmp_path):
    train(config(tiny_dataset, tmp_path, epochs=4, precision="bfloat16"), progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    train(config(tiny_dataset, tmp_path, epochs=5, loss="mse", lr=1.0), resume=True, progress=False)
    saved = xrdzoo.load(str(tmp_path / "last.safetensors")).metadata["train"]
    assert saved["epoch"] == 5
    assert saved["config"]["precision"] == "float32"  # a runtime setting follows the new call
    assert (saved["config"]["loss"], saved["config"]["lr"]) == ("pearson", 2e-3)  # the model's recipe does not
    with pytest.raises(ValueError, match="precision 'float16' is not one of float32, bfloat16"):
        config(tiny_dataset, tmp_path, precision="float16")


def _xrdzoo(*args: str) -> list[str]:
    return [sys.executable, "-m", "xrdzoo", *args]


FAST = ["--encoder", "fraction", "--backbone", "mlp", "--backbone-option", "hidden=[32]", "--batch-size", "4",
        "--patience", "1000"]
SERIAL = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every process: the same floating-point sums


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a job started in the background by a shell inherits it


def _epochs_done(run: Path) -> int:
    try:
        return len(json.loads((run / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize("stop, ignored, code", [(signal.SIGINT, False, 130), (signal.SIGINT, True, 130),
                                                 (signal.SIGTERM, False, 143)])
def test_a_stop_signal_leaves_a_usable_checkpoint_and_resume_continues(tiny_dataset, tmp_path, stop, ignored, code):
    args = ["train", "--data", str(tiny_dataset), "--output", str(tmp_path), *FAST, "--epochs", "500"]
    proc = subprocess.Popen(_xrdzoo(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=SERIAL,
                            preexec_fn=_ignore_sigint if ignored else None)
    deadline = time.time() + 120
    while not (tmp_path / "train_state.safetensors").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(stop)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, output
    assert f"stopped by {stop.name}" in output and f"xrdzoo train --resume --data {tiny_dataset}" in output
    done = _epochs_done(tmp_path)
    assert xrdzoo.load(str(tmp_path / "last.safetensors")).predict(["BaTiO3"]).shape == (1, 1024)
    args[args.index("--epochs") + 1] = str(done + 1)
    result = subprocess.run(_xrdzoo(*args, "--resume"), capture_output=True, text=True, timeout=120, env=SERIAL)
    assert result.returncode == 0, result.stderr
    assert _epochs_done(tmp_path) == done + 1


def test_killed_at_random_instants_resumes_exactly(tiny_dataset, tmp_path):
    epochs = 60
    args = ["train", "--data", str(tiny_dataset), *FAST, "--epochs", str(epochs)]
    straight = subprocess.run(_xrdzoo(*args, "--output", str(tmp_path / "straight")), capture_output=True,
                              text=True, timeout=300, env=SERIAL)
    assert straight.returncode == 0, straight.stderr
    run, rng, kills = tmp_path / "killed", random.Random(13), 0
    while kills < 4 and _epochs_done(run) < epochs:
        resume = ["--resume"] if (run / "train_state.safetensors").exists() else []
        proc = subprocess.Popen(_xrdzoo(*args, "--output", str(run), *resume), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=SERIAL)
        before, deadline = _epochs_done(run), time.time() + 120
        while _epochs_done(run) == before and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))  # somewhere in an epoch, or in the middle of writing one
        proc.kill()
        proc.wait()
        kills += 1
    resume = ["--resume"] if (run / "train_state.safetensors").exists() else []
    final = subprocess.run(_xrdzoo(*args, "--output", str(run), *resume), capture_output=True, text=True,
                           timeout=300, env=SERIAL)
    assert final.returncode == 0, final.stderr
    assert kills == 4 and _epochs_done(run) == epochs
    for name in ("last.safetensors", "best.safetensors"):
        a, b = load_file(str(tmp_path / "straight" / name)), load_file(str(run / name))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert (run / "history.json").read_text() == (tmp_path / "straight" / "history.json").read_text()


def test_resume_refuses_other_data_and_settings_are_checked_up_front(tiny_dataset, structure_dir, tmp_path):
    train(config(tiny_dataset, tmp_path / "run", epochs=1), progress=False)
    other = tmp_path / "other.npz"
    build_dataset(structure_dir, other, seed=1, workers=1, progress=False)  # the same rows, split otherwise
    with pytest.raises(InputError, match=r"--data .*other.npz is not the dataset the run in .* was trained on"):
        train(config(other, tmp_path / "run", epochs=2), resume=True, progress=False)
    for setting in ("epochs", "batch_size"):
        result = runner.invoke(app, ["train", "--data", str(tiny_dataset), "--output", str(tmp_path / "zero"),
                                     f"--{setting.replace('_', '-')}", "0"])
        assert result.exit_code == 1 and f"Error: {setting} must be a whole number of at least 1, got 0" in \
            result.output and "best checkpoint" not in result.output
    assert not (tmp_path / "zero").exists()


def test_two_process_torchrun(tiny_dataset, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "xrdzoo", "train", "--data", str(tiny_dataset),
           "--output", str(tmp_path), "--backbone", "resnet10", "--encoder-option", "max_count=8", "--epochs", "2",
           "--batch-size", "8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("epoch 2:") == 1  # only process 0 reports and writes
    model = xrdzoo.load(str(tmp_path / "best.safetensors"))
    assert model.metadata["train"]["epoch"] >= 1 and model.predict(["SrTiO3"]).shape == (1, 1024)


@pytest.mark.parametrize("backbone", ["mean", "knn"])
def test_baselines_fit_through_the_same_path(tiny_dataset, tmp_path, backbone):
    best = train(config(tiny_dataset, tmp_path, backbone=backbone), progress=False)
    model = xrdzoo.load(str(best))
    data = load_dataset(tiny_dataset).select("train")
    predicted = model.predict(data.formulas)
    if backbone == "knn":  # a training formula is its own nearest neighbour
        assert np.allclose(predicted, data.patterns, atol=0.05)
    else:
        assert np.allclose(predicted, predicted[0]) and predicted.shape == data.patterns.shape


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory) -> Path:
    return train(config(tiny_dataset, tmp_path_factory.mktemp("run"), epochs=2), progress=False)


def test_evaluate_command(trained, tiny_dataset, tmp_path):
    out = tmp_path / "metrics.json"
    result = runner.invoke(app, ["evaluate", str(trained), "--data", str(tiny_dataset), "--output", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    for key in ("pearson/all", "cosine/peaks", "jsd/aligned", "dtw/all", "peak_recall", "peak_precision", "peak_f1"):
        assert key in metrics and key in result.output
    assert metrics["split"] == "test" and metrics["n"] > 0


def test_export_writes_a_16_bit_weight_scored_on_its_test_split(trained, tiny_dataset, tmp_path):
    args = ["export", str(trained), "--name", "resnet10_onehot.tiny", "--folder", str(tmp_path),
            "--manifest", str(tmp_path / "manifest.json"), "--test-data", str(tiny_dataset), "--license", "MIT"]
    assert runner.invoke(app, args).exit_code == 0
    entry = json.loads((tmp_path / "manifest.json").read_text())["weights"][0]
    weight = tmp_path / entry["file"]
    first = weight.read_bytes()
    assert entry["name"] == "resnet10_onehot.tiny" and entry["size"] == len(first) and entry["license"] == "MIT"
    assert all(t.dtype == torch.float16 for t in load_file(str(weight)).values() if t.is_floating_point())
    scored = xrdzoo.evaluate.evaluate_model(xrdzoo.load(str(weight)), load_dataset(tiny_dataset), "test")
    assert entry["metrics"]["peak_f1"] == scored["peak_f1"]
    assert entry["metrics"]["data_hash"] == load_dataset(tiny_dataset).hash
    full, half = xrdzoo.load(str(trained)).predict(["BaTiO3"]), xrdzoo.load(str(weight)).predict(["BaTiO3"])
    assert np.abs(full - half).max() < 0.5  # on the 0..100 scale
    assert runner.invoke(app, args).exit_code == 0
    assert weight.read_bytes() == first  # the same checkpoint exports to the same bytes, so the same sha256
    again = json.loads((tmp_path / "manifest.json").read_text())["weights"]
    assert len(again) == 1 and again[0]["sha256"] == entry["sha256"]  # replaced, not added twice


def test_predict_command_outputs(trained, structure_dir, tmp_path):
    cif = next(structure_dir.glob("*BaTiO3*.cif"))
    png, csv, js = tmp_path / "p.png", tmp_path / "p.csv", tmp_path / "p.json"
    result = runner.invoke(app, ["predict", "BaTiO3", "NaCl", "--checkpoint", str(trained), "--output", str(csv),
                                 "--plot", str(png), "--true", str(cif)])
    assert result.exit_code == 0, result.output
    assert "BaTiO3: predicted peaks" in result.output and "d(A)" in result.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert table.shape == (1024, 3) and np.isclose(table[:, 1].max(), 100, atol=0.01)
    assert runner.invoke(app, ["predict", "BaTiO3", "--checkpoint", str(trained), "--output", str(js)]).exit_code == 0
    record = json.loads(js.read_text())[0]
    assert record["formula"] == "BaTiO3" and len(record["pattern"]) == 1024 and record["peaks"]
    for peak in record["peaks"]:  # each peak is given at its apex: the pattern there is the peak's intensity
        apex = np.argmin(np.abs(TWO_THETA - peak["two_theta"]))
        assert record["pattern"][apex] == pytest.approx(peak["intensity"], abs=0.01)
    xy = tmp_path / "p.xy"
    assert runner.invoke(app, ["predict", "SrTiO3", "--checkpoint", str(trained), "--output", str(xy)]).exit_code == 0
    assert np.loadtxt(xy).shape == (1024, 2)


def test_predict_batch_mode_streams_and_keeps_going(trained, tmp_path):
    formulas = tmp_path / "formulas.txt"
    formulas.write_text("BaTiO3\n# a comment\nXx2O3\nNaCl\n\nCaTiO3\n")
    out = tmp_path / "screen.jsonl"
    result = runner.invoke(app, ["predict", "--from-file", str(formulas), "--checkpoint", str(trained), "--output",
                                 str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["formula"] for line in lines} == {"BaTiO3", "Xx2O3", "NaCl", "CaTiO3"}
    assert "Xx" in next(line["error"] for line in lines if line["formula"] == "Xx2O3")
    assert "formulas/s" in result.output


@pytest.mark.parametrize("formula, reason", [("Xx2O3", "Xx"), ("Ba(TiO3", "Ba(TiO3"), ("Fe9O10", "count")])
def test_predict_bad_formula_is_one_clear_line(trained, formula, reason):
    result = runner.invoke(app, ["predict", formula, "--checkpoint", str(trained)])
    assert result.exit_code == 2
    assert reason in result.output and "Traceback" not in result.output


def test_predict_bad_checkpoint_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    result = runner.invoke(app, ["predict", "BaTiO3", "--checkpoint", str(bad)])
    assert result.exit_code != 0 and "not a readable safetensors file" in result.output
