"""Screening many formulas into one file: read from a file or generated from an element pool, predicted in partitions
in this process or on Dask (`xrdzoo.engine`), and resumable.

A screen cuts its input into partitions (``PARTITION`` formula lines, or ``SYSTEMS`` chemical systems of a pool),
predicts each as one task, and keeps each finished partition as one JSON-lines file in ``<output>.parts/`` (written
whole or not at all) beside a note of the screen's settings. When every partition is done the parts become the
output (``.jsonl``, ``.csv`` or ``.parquet``, by its suffix) through one rename and the folder goes, so the output's
name never holds a partial result. A screen that was interrupted, or lost its cluster, leaves its parts: the same
call with ``resume`` predicts only the partitions still missing (with any number of workers).
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from xrdzoo.engine import engine, loadable, member
from xrdzoo.errors import InputError, at_least_one
from xrdzoo.files import atomic_path, refuse_overwrite
from xrdzoo.formulas import DEFAULT_MAX_ATOMS, compositions
from xrdzoo.prediction import peak_rows
from xrdzoo.predictors import with_consensus

SCREEN_FORMATS = (".jsonl", ".csv", ".parquet")
PARTITION = 2048  # formula lines per task: seconds of work for the default model, so the engine's cost is small
SYSTEMS = 8  # chemical systems of a pool per task (a quaternary system has up to about 1,800 compositions)
ROW_GROUP = 65536  # records per Parquet row group


@dataclass(frozen=True)
class Pool:
    """Formulas generated from an element pool: the compositions (``xrdzoo.formulas.compositions``, at most
    ``max_atoms`` atoms, optionally charge-balanced) of every chemical system of 2 to ``max_elements`` of the
    ``elements``; systems in order (fewer elements first, then alphabetical), each system's formulas sorted."""

    elements: tuple[str, ...]
    max_elements: int = 4
    max_atoms: int = DEFAULT_MAX_ATOMS
    charge_balanced: bool = False

    def __post_init__(self):
        from pymatgen.core import Element

        elements = tuple(sorted({e.strip() for e in self.elements if e.strip()}))
        object.__setattr__(self, "elements", elements)
        bad = [e for e in elements if not Element.is_valid_symbol(e)]
        if bad:
            raise InputError(f"{bad[0]!r} is not an element symbol; give a pool like Li,Mn,Ti,O,F")
        if len(elements) < 2:
            raise InputError("give at least two elements in the pool, e.g. --elements-pool Li,Mn,O")
        if isinstance(self.max_elements, bool) or not isinstance(self.max_elements, int) or self.max_elements < 2:
            raise InputError(f"--max-elements must be a whole number of at least 2, got {self.max_elements!r}")
        if self.max_atoms < min(self.max_elements, len(elements)):
            raise InputError(f"--max-atoms {self.max_atoms} is fewer than --max-elements {self.max_elements}")

    def systems(self) -> Iterator[tuple[str, ...]]:
        """Every chemical system of the pool, in order."""
        for size in range(2, min(self.max_elements, len(self.elements)) + 1):
            yield from itertools.combinations(self.elements, size)

    def formulas(self, system: tuple[str, ...]) -> list[str]:
        """The compositions of one system."""
        return compositions(list(system), self.max_atoms, self.charge_balanced)


@dataclass(frozen=True)
class Screened:
    """What a screen did: formulas ``predicted`` and ``failed`` (error records) in the output, the ``seconds`` it took
    and the seconds to its ``first`` finished partition (None when a resumed screen had nothing left)."""

    predicted: int
    failed: int
    seconds: float
    first: float | None


@dataclass(frozen=True)
class _Job:
    """What every partition of one screen shares (sent to each task; the model goes by name to a cluster)."""

    model: object
    pool: Pool | None
    batch_size: int
    threshold: float
    precision: str
    consensus: int | None


def screen(model, source: Path | Pool, output: Path, batch_size: int = 64, threshold: float = 10.0,
           precision: str = "float32", workers: int = 0, scheduler: str | None = None,
           resume: bool = False, consensus: int | None = None) -> Screened:
    """Predict every formula of ``source`` (a file, one formula a line, ``#`` comments; or a :class:`Pool`) into
    ``output`` (``.jsonl``, ``.csv`` or ``.parquet``, by its suffix) with ``model`` (a zoo member, or the weight name
    or checkpoint path a cluster's workers load it from, once each).

    Exactly one record per formula, in input order: its ``line`` (the line number in the file, or the formula's
    1-based position in the pool), the ``formula`` as written, and its ``peaks`` or the ``error`` that stopped it (a
    line such as ``Fe 2O3`` is one error, not ``Fe``). ``workers`` > 0 runs a local Dask cluster of that many
    processes, ``scheduler`` joins a running one; see the module docstring for the partial output and ``resume``.
    ``consensus`` K answers with a template member's consensus of K instead of its own (1: its ranker's first,
    fastest; :func:`xrdzoo.predictors.with_consensus`). Prints progress to stderr.
    """
    output = Path(output)
    if not isinstance(source, Pool):
        refuse_overwrite([source], output=output)
    if output.suffix not in SCREEN_FORMATS:
        raise InputError(f"cannot screen into {output.name!r}: use a {', '.join(SCREEN_FORMATS[:-1])} or "
                         f"{SCREEN_FORMATS[-1]} file")
    at_least_one(batch_size, "batch_size")
    loadable(model, workers, scheduler)
    if consensus is not None:  # refused here, before any work, where the member has none
        with_consensus(member(model), consensus)
    pool = source if isinstance(source, Pool) else None
    partitions = list(_chunks(pool.systems(), SYSTEMS)) if pool else None
    total = len(partitions) if pool else -(-sum(1 for _ in _read_formulas(source)) // PARTITION)
    parts = _Parts(output, _settings(model, source, threshold, precision, consensus), total, resume)
    todo = ((i, part) for i, part in enumerate(partitions if pool else _chunks(_read_formulas(source), PARTITION))
            if not parts.done(i))
    job = _Job(model, pool, batch_size, threshold, precision, consensus)
    start, first, done = time.perf_counter(), None, 0
    try:
        with engine(workers, scheduler) as run:
            for index, records in run(partial(_predict, job), todo):
                parts.keep(index, records)
                first = first or time.perf_counter() - start
                done += len(records)
                print(f"\r{parts.count()}/{total} partitions, {done / (time.perf_counter() - start):.0f} formulas/s",
                      end="", file=sys.stderr)
    except BaseException:
        if not parts.count():  # nothing to go on from: leave no folder that a new screen would have to resume
            shutil.rmtree(parts.folder)
        else:
            print(f"\nstopped: {parts.count()} of {total} partitions kept in {parts.folder}; the same command with "
                  "--resume goes on from there", file=sys.stderr)
        raise
    predicted, failed = parts.assemble(output)
    print(f"\npredicted {predicted} formulas ({failed} could not be encoded) into {output}", file=sys.stderr)
    return Screened(predicted, failed, time.perf_counter() - start, first)


def _predict(job: _Job, task: tuple[int, list]) -> tuple[int, list[dict]]:
    """One partition's records (a pool's formulas get their line numbers when the parts are put together)."""
    index, part = task
    items = [(None, f) for system in part for f in job.pool.formulas(system)] if job.pool else part
    model = member(job.model) if job.consensus is None else with_consensus(member(job.model), job.consensus)
    answers = model.answer([text for _, text in items], job.batch_size, job.precision)
    patterns = {k: answers.patterns[j] for j, k in enumerate(answers.kept)}
    return index, [{"line": number, "formula": text, "peaks": peak_rows(patterns[k], job.threshold)}
                   if k in patterns else {"line": number, "formula": text, "error": answers.refused[text]}
                   for k, (number, text) in enumerate(items)]


def _chunks(items, size: int) -> Iterator[list]:
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _read_formulas(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, the line as written) of every line that is neither blank nor a ``#`` comment; bytes that are
    not UTF-8 become U+FFFD, so such a line is one error record, not a failed run."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                yield number, line.strip()


def _settings(model, source, threshold: float, precision: str, consensus: int | None) -> dict:
    """What makes two screens the same one (a resumed screen must match): the model, the input and what a record
    holds; the batch size and the workers may change."""
    if isinstance(source, Pool):
        where = asdict(source)
    else:
        stat = Path(source).stat()
        where = {"file": str(Path(source).resolve()), "bytes": stat.st_size, "modified": stat.st_mtime_ns}
    return {"model": model if isinstance(model, str) else getattr(model, "config", type(model).__name__),
            "source": where, "threshold": threshold, "precision": precision, "partition": [PARTITION, SYSTEMS],
            "consensus": consensus}


class _Parts:
    """The finished partitions of one screen, one JSON-lines file each in ``<output>.parts/``."""

    def __init__(self, output: Path, settings: dict, total: int, resume: bool):
        self.folder, self.total = output.with_name(output.name + ".parts"), total
        note = self.folder / "screen.json"
        settings = json.loads(json.dumps(settings, default=str))
        existed = self.folder.exists()
        try:  # one atomic mkdir: of two screens started together into one output, the second refuses
            self.folder.mkdir(parents=True, exist_ok=resume)
        except FileExistsError:
            raise InputError(f"{self.folder} holds a running or interrupted screen: add --resume to go on with it, "
                             "or delete it to start again") from None
        if existed and (not note.exists() or json.loads(note.read_text()) != settings):
            raise InputError(f"{self.folder} holds a screen of another input, model or settings: delete it to start "
                             "again")
        with atomic_path(note) as partial_note:
            partial_note.write_text(json.dumps(settings, indent=1))
        self._done = {int(p.stem) for p in self.folder.glob("*.jsonl")}

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:07d}.jsonl"

    def done(self, index: int) -> bool:
        return index in self._done

    def count(self) -> int:
        return len(self._done)

    def keep(self, index: int, records: list[dict]) -> None:
        with atomic_path(self._path(index)) as partial_part:
            partial_part.write_text("".join(json.dumps(r) + "\n" for r in records))
        self._done.add(index)

    def assemble(self, output: Path) -> tuple[int, int]:
        """Write every part, in order, to ``output`` (pool formulas numbered), remove the folder; (predicted,
        failed)."""
        predicted = failed = 0
        with atomic_path(output) as partial_output, _record_writer(partial_output, output.suffix) as write:
            for index in range(self.total):
                with open(self._path(index)) as lines:
                    for line in lines:
                        record = json.loads(line)
                        record["line"] = record["line"] or predicted + failed + 1
                        write(record)
                        failed += "error" in record
                        predicted += "error" not in record
        shutil.rmtree(self.folder)
        return predicted, failed


@contextmanager
def _record_writer(path: Path, suffix: str) -> Iterator[Callable[[dict], None]]:
    """A function writing one screening record to ``path``: a JSON line, a CSV row (peaks as ``2theta:intensity``)
    or a Parquet row (``peaks`` a list of structs, ``error`` null when there is none)."""
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        peak = pa.struct([("two_theta", pa.float64()), ("intensity", pa.float64()), ("d_spacing", pa.float64())])
        schema = pa.schema([("line", pa.int64()), ("formula", pa.string()), ("peaks", pa.list_(peak)),
                            ("error", pa.string())])
        rows = []
        with pq.ParquetWriter(path, schema) as writer:
            def write(record):
                rows.append(record)
                if len(rows) == ROW_GROUP:
                    writer.write_table(pa.Table.from_pylist(rows, schema))
                    rows.clear()

            yield write
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema))
        return
    with open(path, "w", newline="") as file:
        if suffix == ".jsonl":
            yield lambda record: file.write(json.dumps(record) + "\n")
            return
        rows = csv.DictWriter(file, ["line", "formula", "peaks", "error"])
        rows.writeheader()
        yield lambda record: rows.writerow({**record, "peaks": " ".join(
            f"{p['two_theta']}:{p['intensity']}" for p in record.get("peaks", []))})
