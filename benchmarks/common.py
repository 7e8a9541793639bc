"""What every benchmark shares: the machine's description and writing results as JSON and as a docs section."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
SHARED_CSV = ROOT.parent / "shared" / "data" / "mp_ternary_structures.csv.gz"
# the paper's Table 2 layout: its distances, and its three modes with the row titles it gives them
DISTANCES = ("cosine", "pearson", "jsd", "dtw")
MODES = {"all": "all 1,024 points", "peaks": "peaks only (>= 10)", "aligned": "peaks after merging/alignment"}


def machine() -> dict:
    """CPU model, core count and library versions of the machine a benchmark ran on."""
    import torch

    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = names[0].strip() if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A markdown table of dict rows (floats with 4 significant digits)."""
    columns = columns or list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_results(name: str, data: dict, markdown: str) -> None:
    """Save ``data`` as ``benchmarks/results/<name>.json`` and put ``markdown`` in its section of
    docs/benchmarks.md, with the command that produced it and the machine it ran on."""
    info = machine()
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"command": command, "machine": info, **data}, indent=2))
    gpu = f", GPU {info['gpu']}" if info["gpu"] else ""
    section = (f"<!-- {name} -->\n{markdown}\n\nProduced by `{command}` on {info['cpu']} ({info['cores']} cores"
               f"{gpu}), torch {info['torch']}. Raw figures: `benchmarks/results/{name}.json`.\n<!-- /{name} -->")
    page = PAGE.read_text() if PAGE.exists() else "# Benchmarks\n\nEvery table below is written by a script in `benchmarks/`.\n"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    page = pattern.sub(lambda _: section, page) if pattern.search(page) else page.rstrip() + "\n\n" + section + "\n"
    PAGE.write_text(page)
    print(markdown)


class FirstK:
    """A member whose answer to each formula is asked once, with the most candidates any setting scores (so the
    answering is timed where a formula is first asked); ``answer(formulas, top=k)`` gives the first k of them."""

    def __init__(self, member, most: int):
        self.member, self.most, self.found = member, most, {}

    def answer(self, formulas, top: int = 1):
        from xrdzoo.contracts import Answers

        missing = [f for f in dict.fromkeys(formulas) if f not in self.found]
        if missing:
            self.found.update(self.member.answer(missing, top=self.most).by_formula(missing))
        return Answers.of_formulas(list(formulas), self.found, top)


def training_templates(member, data):
    """The template member holding only the templates of ``data``'s training split: a shipped member that knows every
    split's structures is then the member its ranker was fitted in (a test formula is never its own template)."""
    import numpy as np

    from xrdzoo.arrays import array_strings

    training = set(np.asarray(data.ids)[data.split == "train"])
    return member.take([row for row, material in enumerate(array_strings(member.ids)) if material in training])


def start_compiled_kernel(member) -> float:
    """Seconds to simulate a first batch large enough for the compiled kernel (``COMPILED_FROM`` copies of the template
    member's BaTiO3 cell): numba's start-up, paid once per process, so that timings after it are steady."""
    import time

    from xrdzoo.xrd.simulate import COMPILED_FROM, simulate_cells

    cell = member.cells(["BaTiO3"])[0][:3]
    start = time.perf_counter()
    simulate_cells([cell] * COMPILED_FROM)
    return time.perf_counter() - start
