"""Batch screening (`xrdzoo predict --from-file`): one record per formula line, in order, written atomically."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

import xrdzoo
from xrdzoo import checkpoint
from xrdzoo.cli import app
from xrdzoo.errors import InputError
from xrdzoo.prediction import screen

runner = CliRunner()
LINES = ["# a screen", "BaTiO3", "Xx2O3", "", "Fe 2O3", "Xx2O3", "NaCl", "Ba1e400TiO3", "  # indented comment",
         "CDS", "Xx2O3", "SrTiO3", "BaTiO3"]


@pytest.fixture(scope="module")
def model():
    return xrdzoo.create_model("fraction", "mlp", hidden=[16])


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    return checkpoint.save(tmp_path_factory.mktemp("model") / "mlp.safetensors", model)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "formulas.txt"
    path.write_bytes(("\n".join(LINES) + "\n").encode() + b"Ba\xffTiO3\n")  # the last line is not UTF-8
    return path


def _expected():
    return [(number, text.strip()) for number, text in enumerate(LINES, start=1)
            if text.strip() and not text.strip().startswith("#")] + [(len(LINES) + 1, "Ba\ufffdTiO3")]


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_one_record_per_line_in_input_order(model, source, tmp_path, batch_size):
    out = tmp_path / "screen.jsonl"
    assert screen(model, source, out, batch_size=batch_size) == 4
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["line"], r["formula"]) for r in records] == _expected()
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert sorted(errors) == [3, 5, 6, 8, 10, 11, 14]  # repeated bad formulas each keep their own line
    assert "after a space" in errors[5] and "not a finite number" in errors[8] and "did you mean Cd" in errors[10]
    assert all("peaks" in r for r in records if r["line"] not in errors)


def test_csv_output_is_csv(model, source, tmp_path):
    out = tmp_path / "screen.csv"
    screen(model, source, out, batch_size=3)
    with open(out, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(int(r["line"]), r["formula"]) for r in rows] == _expected()
    assert rows[0]["peaks"] and ":" in rows[0]["peaks"] and not rows[0]["error"]
    assert rows[1]["error"] and not rows[1]["peaks"]


def test_a_failed_run_leaves_the_old_output(model, source, tmp_path, monkeypatch):
    out = tmp_path / "screen.jsonl"
    out.write_text("earlier results\n")
    calls = []

    def answer_then_fail(formulas, *args):
        calls.append(formulas)
        if len(calls) > 1:
            raise RuntimeError("the machine went away")
        return xrdzoo.model.XRDModel.answer(model, formulas, *args)

    monkeypatch.setattr(model, "answer", answer_then_fail)
    with pytest.raises(RuntimeError):
        screen(model, source, out, batch_size=2)
    assert out.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["formulas.txt", "screen.jsonl"]  # no partial file


def test_bad_settings_are_refused_before_any_work(model, source, tmp_path):
    out = tmp_path / "screen.json"
    with pytest.raises(InputError, match=r"cannot screen into 'screen.json': use a .jsonl or .csv file"):
        screen(model, source, out)
    for size in (0, -1):
        with pytest.raises(InputError, match=f"batch_size must be a whole number of at least 1, got {size}"):
            screen(model, source, tmp_path / "screen.jsonl", batch_size=size)
    assert not out.exists() and not (tmp_path / "screen.jsonl").exists()


@pytest.mark.parametrize("size", ["0", "-1"])
def test_cli_batch_size_below_one_is_one_error_line(weights, source, tmp_path, size):
    for args in (["--from-file", str(source)], ["BaTiO3"]):
        result = runner.invoke(app, ["predict", *args, "--checkpoint", str(weights), "--batch-size", size])
        assert result.exit_code == 1 and f"Error: batch_size must be a whole number of at least 1, got {size}" in \
            result.output, result.output


def test_cli_screen_writes_the_suffix_format(weights, source, tmp_path):
    out = tmp_path / "hits.csv"
    result = runner.invoke(app, ["predict", "--from-file", str(source), "--checkpoint", str(weights), "--output",
                                 str(out), "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("line,formula,peaks,error\n") and len(out.read_text().splitlines()) == 12
