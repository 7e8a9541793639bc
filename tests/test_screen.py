"""Batch screening (`xrdzoo predict --from-file`): one record per formula line, in order, written atomically."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
import json

import pytest
from typer.testing import CliRunner

import xrdzoo
from xrdzoo import checkpoint
from xrdzoo.cli import app
from xrdzoo.errors import InputError
from xrdzoo import screening
from xrdzoo.formulas import compositions
from xrdzoo.prediction import peak_rows
from xrdzoo.screening import Pool, screen

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
    assert screen(model, source, out, batch_size=batch_size).predicted == 4
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


def test_a_failed_run_leaves_the_old_output_and_resumes_where_it_stopped(model, source, tmp_path, monkeypatch):
    reference = tmp_path / "reference.jsonl"
    screen(model, source, reference)
    monkeypatch.setattr(screening, "PARTITION", 3)  # 11 formula lines: partitions 0..3
    out = tmp_path / "screen.jsonl"
    out.write_text("earlier results\n")
    calls = []

    def answer_then_fail(formulas, *args):
        calls.append(formulas)
        if len(calls) == 3:
            raise RuntimeError("the machine went away")
        return xrdzoo.model.XRDModel.answer(model, formulas, *args)

    monkeypatch.setattr(model, "answer", answer_then_fail)
    with pytest.raises(RuntimeError):
        screen(model, source, out, batch_size=2)
    assert out.read_text() == "earlier results\n"  # the output's name never holds a partial result
    parts = tmp_path / "screen.jsonl.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["0000000.jsonl", "0000001.jsonl", "screen.json"]
    with pytest.raises(InputError, match="holds a running or interrupted screen: add --resume"):
        screen(model, source, out)
    with pytest.raises(InputError, match="holds a screen of another input, model or settings"):
        screen(model, source, out, threshold=20.0, resume=True)
    calls.clear()
    assert screen(model, source, out, resume=True).predicted == 4
    assert len(calls) == 2  # only the two partitions still missing
    assert out.read_text() == reference.read_text() and not parts.exists()


def test_parquet_holds_the_same_records(model, source, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    screen(model, source, tmp_path / "screen.jsonl")
    screen(model, source, tmp_path / "screen.parquet")
    expected = [json.loads(line) for line in (tmp_path / "screen.jsonl").read_text().splitlines()]
    rows = pq.read_table(tmp_path / "screen.parquet").to_pylist()
    assert [{k: v for k, v in row.items() if v is not None} for row in rows] == expected


def test_a_pool_screens_every_composition_of_every_system_in_order(model, tmp_path):
    pool = Pool(("O", "Ti", "Li", "Mn"), max_elements=3, max_atoms=6, charge_balanced=True)
    assert list(pool.systems())[:2] == [("Li", "Mn"), ("Li", "O")] and len(list(pool.systems())) == 6 + 4
    expected = [f for system in pool.systems() for f in compositions(list(system), 6, charge_balanced=True)]
    assert "Li2O" in expected and "Li2TiO3" in expected and len(expected) == len(set(expected))
    result = screen(model, pool, tmp_path / "pool.jsonl")
    records = [json.loads(line) for line in (tmp_path / "pool.jsonl").read_text().splitlines()]
    assert [(r["line"], r["formula"]) for r in records] == list(enumerate(expected, start=1))
    assert result.predicted + result.failed == len(expected) and result.first is not None


@pytest.mark.parametrize("pool, options, message", [
    (("Li", "Xx"), {}, "'Xx' is not an element symbol"),
    (("Li",), {}, "at least two elements"),
    (("Li", "O"), {"max_elements": 1}, "--max-elements must be a whole number of at least 2"),
    (("Li", "O", "Ti"), {"max_atoms": 2}, "--max-atoms 2 is fewer than --max-elements 4"),
])
def test_a_bad_pool_is_one_error(pool, options, message):
    with pytest.raises(InputError, match=message):
        Pool(pool, **options)


def test_bad_settings_are_refused_before_any_work(model, source, tmp_path):
    out = tmp_path / "screen.json"
    with pytest.raises(InputError, match=r"cannot screen into 'screen.json': use a .jsonl, .csv or .parquet file"):
        screen(model, source, out)
    for size in (0, -1):
        with pytest.raises(InputError, match=f"batch_size must be a whole number of at least 1, got {size}"):
            screen(model, source, tmp_path / "screen.jsonl", batch_size=size)
    with pytest.raises(InputError, match="a XRDModel has no consensus to set: only template members answer by one"):
        screen(model, source, tmp_path / "screen.jsonl", consensus=1)
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


def test_cli_screens_a_pool_on_workers_into_parquet(weights, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "pool.parquet"
    result = runner.invoke(app, ["predict", "--elements-pool", "Li,Mn,O", "--max-atoms", "5", "--checkpoint",
                                 str(weights), "--output", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    formulas = [f for system in Pool(("Li", "Mn", "O"), max_atoms=5).systems()
                for f in compositions(list(system), 5)]
    assert pq.read_table(out).column("formula").to_pylist() == formulas


def test_cli_refuses_two_inputs_and_a_model_object_on_a_cluster(model, weights, source, tmp_path):
    result = runner.invoke(app, ["predict", "--from-file", str(source), "--elements-pool", "Li,O", "--checkpoint",
                                 str(weights)])
    assert result.exit_code == 2 and "screen one input" in result.output
    with pytest.raises(InputError, match="give its weight name or checkpoint path"):
        screen(model, source, tmp_path / "screen.jsonl", workers=2)


def test_a_killed_worker_is_retried_and_the_output_is_a_one_process_run(weights, tmp_path, monkeypatch):
    """A local Dask cluster joined through its scheduler's address loses a worker process (SIGKILL) mid-run; its
    nanny starts a new one, the scheduler runs the lost partitions again, the output is the one-process output."""
    distributed = pytest.importorskip("distributed")
    source = tmp_path / "many.txt"
    source.write_text("\n".join(LINES * 150) + "\n")
    monkeypatch.setattr(screening, "PARTITION", 20)  # 1,650 formula lines: 83 partitions
    reference = tmp_path / "reference.jsonl"
    screen(str(weights), source, reference)
    out = tmp_path / "screen.jsonl"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as \
            cluster, distributed.Client(cluster) as client:
        pids = sorted(client.run(os.getpid).values())
        run = threading.Thread(target=screen, args=(str(weights), source, out),
                               kwargs={"scheduler": cluster.scheduler_address})
        run.start()
        parts = tmp_path / "screen.jsonl.parts"
        while run.is_alive() and len(list(parts.glob("*.jsonl"))) < 5:
            time.sleep(0.02)
        kept = len(list(parts.glob("*.jsonl")))
        os.kill(pids[0], signal.SIGKILL)
        run.join(timeout=120)
        assert 5 <= kept < 83  # the worker died mid-run
        client.wait_for_workers(2, timeout=30)
        assert pids[0] not in client.run(os.getpid).values()  # replaced by a new process
    assert out.read_text() == reference.read_text()


def test_a_screen_of_a_weight_name_answers_with_every_part_of_it(tmp_path):
    from xrdzoo.engine import member

    # The shipped default is several files; a screen's member (also each Dask worker's) is all of them joined.
    whole, screened = xrdzoo.load(xrdzoo.DEFAULT_MODEL), member(xrdzoo.DEFAULT_MODEL)
    assert len(screened.lattices) == len(whole.lattices)
    source = tmp_path / "formulas.txt"
    source.write_text("LiFePO4\n")  # a quaternary: its structures are in a part, not in the first file
    screen(xrdzoo.DEFAULT_MODEL, source, tmp_path / "screen.jsonl")
    record = json.loads((tmp_path / "screen.jsonl").read_text())
    assert whole.answer(["LiFePO4"]).how[0].startswith("known structure mp-19017")
    assert record["peaks"] == peak_rows(whole.answer(["LiFePO4"]).patterns[0], 10.0)
