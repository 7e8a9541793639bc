"""No data loss: an output that is an input is refused, concurrent writers never mix, SIGTERM leaves no partial file,
and a full disk or a folder that cannot be written is one line that keeps the old file."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import xrdzoo
from xrdzoo import checkpoint
from xrdzoo.cli import app
from xrdzoo.errors import InputError
from xrdzoo.files import WriteError, atomic_path, refuse_overwrite
from xrdzoo.screening import screen

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    model = xrdzoo.create_model("fraction", "mlp", hidden=[16])
    return checkpoint.save(tmp_path_factory.mktemp("model") / "mlp.safetensors", model)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


# --- an output that is an input -------------------------------------------------------------------------------


def test_screening_into_its_own_formula_file_is_refused(weights, tmp_path):
    source = tmp_path / "cands.csv"
    source.write_text("BaTiO3\nNaCl\n")
    result = runner.invoke(app, ["predict", "--from-file", str(source), "--output", str(source), "--checkpoint",
                                 str(weights)])
    assert result.exit_code == 1 and "is also an input of this command" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and source.read_text() == "BaTiO3\nNaCl\n"
    link = tmp_path / "link.jsonl"
    source.rename(tmp_path / "cands.jsonl")
    link.symlink_to(tmp_path / "cands.jsonl")
    with pytest.raises(InputError, match="--output file .* is also an input"):
        screen(xrdzoo.load(str(weights)), tmp_path / "cands.jsonl", link)  # the same file by another name
    assert (tmp_path / "cands.jsonl").read_text() == "BaTiO3\nNaCl\n"


@pytest.mark.parametrize("option", ["--output", "--plot"])
def test_simulate_and_predict_never_write_over_their_structure_file(weights, tmp_path, option):
    structure = tmp_path / "NaCl.xy"  # any suffix: the check comes before the file is read or written
    structure.write_text("kept")
    for args in (["simulate", str(structure)], ["predict", "NaCl", "--checkpoint", str(weights), "--true",
                                                 str(structure)]):
        result = runner.invoke(app, [*args, option, str(structure)])
        assert result.exit_code == 1 and f"the {option} file" in result.output, result.output
        assert structure.read_text() == "kept"


def test_refuse_overwrite_compares_files_not_spellings(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    refuse_overwrite([tmp_path / "a.txt", None], output=tmp_path / "b.txt", plot=None)
    with pytest.raises(InputError, match="--plot file"):
        refuse_overwrite([tmp_path / "a.txt"], plot=tmp_path / "sub" / ".." / "a.txt")


# --- concurrent writers -----------------------------------------------------------------------------------------


def test_two_writers_of_one_path_get_their_own_partial_files_and_the_last_to_finish_wins(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as first:
        with atomic_path(target) as second:
            assert first != second and first.parent == second.parent == tmp_path
            first.write_text("first, whole")
            second.write_text("second, whole")
        assert target.read_text() == "second, whole"  # the second finished first
    assert target.read_text() == "first, whole" and _leftovers(tmp_path) == []


def _formulas(path: Path, element: str, n: int) -> None:
    path.write_text("".join(f"{element}{1 + i % 7}O{1 + i // 7 % 50}\n" for i in range(n)))


@pytest.mark.slow
def test_two_screens_writing_one_output_never_interleave(weights, tmp_path):
    n = 6000
    _formulas(tmp_path / "ba.txt", "Ba", n)
    _formulas(tmp_path / "sr.txt", "Sr", n)
    out = tmp_path / "screen.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "xrdzoo", "predict", "--from-file", str(tmp_path / source),
                               "--output", str(out), "--checkpoint", str(weights), "--batch-size", "16"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
             for source in ("ba.txt", "sr.txt")]
    codes = [proc.wait(timeout=300) for proc in procs]
    errors = [proc.stderr.read() for proc in procs]
    assert 0 in codes, errors  # at least one finishes; a second one running at the same time refuses in one line
    assert all(code == 0 or "holds a running or interrupted screen" in error for code, error in zip(codes, errors))
    records = [json.loads(line) for line in out.read_text().splitlines()]  # every line whole
    assert len(records) == n and [r["line"] for r in records] == list(range(1, n + 1))
    assert len({r["formula"][:2] for r in records}) == 1  # one list, whole, not a mix of both
    assert _leftovers(tmp_path) == []


# --- SIGTERM ------------------------------------------------------------------------------------------------------

WRITER = """
import sys, time
from xrdzoo.files import atomic_path
with atomic_path(sys.argv[1]) as partial:
    partial.write_text("half")
    print(partial, flush=True)
    for _ in range(600):  # short sleeps: Python runs the handler at the next one even if another thread took the signal
        time.sleep(0.1)
"""


def test_sigterm_removes_the_partial_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    partial = Path(proc.stdout.readline().strip())
    assert partial.read_text() == "half"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not partial.exists() and _leftovers(tmp_path) == [] and target.read_text() == "old"


def test_sigterm_keeps_its_default_action_outside_a_write(tmp_path):
    with atomic_path(tmp_path / "x.txt") as partial:
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        partial.write_text("x")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# --- full disks and folders that cannot be written ------------------------------------------------------------------

FULL_DISK = """
import resource, signal, sys
from xrdzoo.cli import app
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing past the limit then fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
sys.argv = ["xrdzoo", *sys.argv[1:]]
app()
"""


def test_a_write_that_runs_out_of_space_is_one_line_and_keeps_the_old_output(weights, tmp_path):
    out = tmp_path / "patterns.csv"
    out.write_text("old patterns")
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, "predict", "BaTiO3", "NaCl", "--checkpoint", str(weights),
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"Error: cannot write {str(out)!r}: File too large; the file that "
                                                "was there is left as it was"]
    assert out.read_text() == "old patterns" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_a_folder_that_cannot_take_the_file_is_one_line(weights, tmp_path, monkeypatch, code):
    out = tmp_path / "patterns.json"
    out.write_text("old")

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # what a read-only, forbidden or full folder answers
    result = runner.invoke(app, ["predict", "BaTiO3", "--checkpoint", str(weights), "--output", str(out)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines()[-1] == (f"Error: cannot write {str(out)!r}: {os.strerror(code)}; "
                                                       "the file that was there is left as it was")
    assert out.read_text() == "old"
    with pytest.raises(WriteError):
        with atomic_path(out) as partial:
            partial.write_text("new")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "out.txt").write_text("old")
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="Permission denied; the file that was there is left as it was"):
            with atomic_path(folder / "out.txt") as partial:
                partial.write_text("new")
    finally:
        folder.chmod(0o755)
    assert (folder / "out.txt").read_text() == "old"


def test_other_errors_in_the_block_pass_through_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "x.txt"):
            open(tmp_path / "missing.txt")
    assert _leftovers(tmp_path) == [] and not (tmp_path / "x.txt").exists()
