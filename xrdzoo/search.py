"""Which composition of an element pool is this measurement? `xrdzoo.identify.rank` over every chemical system of
the pool (``xrdzoo.screening.Pool``), one system a task through `xrdzoo.engine` (this process or Dask), merged.

Each system is ranked exactly as ``xrdzoo identify --elements`` ranks it alone (its candidate formulas predicted, its
known structures simulated, the same score), so a candidate's score does not depend on the pool around it; the merged
ranking orders every system's candidates by that score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from xrdzoo.engine import engine, loadable, member
from xrdzoo.identify import TOP, Ranking, Scorer, best_first, candidate_formulas, rank
from xrdzoo.screening import Pool
from xrdzoo.xrd.pattern import Pattern


@dataclass(frozen=True)
class _Search:
    """What every system's task shares (the model goes by name to a cluster)."""

    measured: Pattern
    pool: Pool
    model: object
    scorer: Scorer
    curves: int
    all_known: bool


def search(measured: Pattern, pool: Pool, model, structures: dict | None = None, scorer: Scorer = Scorer(),
           workers: int = 0, scheduler: str | None = None, curves: int = TOP, progress: bool = False,
           all_known: bool = False) -> Ranking:
    """Every candidate of every system of ``pool`` (its compositions, and the ``structures`` = {formula: (id,
    Structure)} of exactly its elements) scored against ``measured``, best first, one system a task (``workers``,
    ``scheduler`` as for ``xrdzoo.engine.engine``; ``model`` a zoo member, or its weight name or checkpoint path on a
    cluster; ``all_known``: also the larger formulas it holds structures of, as ``candidate_formulas``). Each system
    keeps the drawn curves of its best ``curves`` candidates, so the merged ranking has the curves of its best
    ``curves``; the others' curves are left empty."""
    from tqdm.auto import tqdm

    loadable(model, workers, scheduler)
    systems = list(pool.systems())
    known = {system: {} for system in systems}
    for formula, found in (structures or {}).items():
        known.get(_system(formula), {})[formula] = found
    matches, skipped, window = [], {}, None
    with engine(workers, scheduler) as run:
        task = partial(_rank_system, _Search(measured, pool, model, scorer, curves, all_known))
        for ranking in tqdm(run(task, known.items()), total=len(systems), desc="ranking systems", unit=" systems",
                            disable=not progress):
            matches += ranking.matches
            skipped |= ranking.skipped
            window = ranking.measured
    return Ranking(best_first(matches), window, skipped)


def _rank_system(job: _Search, task: tuple) -> Ranking:
    """One system's ranking, its candidates past the best ``job.curves`` without their curves."""
    system, known = task
    model = member(job.model)
    formulas = candidate_formulas(list(system), job.pool.max_atoms, job.pool.charge_balanced,
                                  model if job.all_known else None)
    ranking = rank(job.measured, formulas, model, known, job.scorer)
    return replace(ranking, matches=[m if i < job.curves else replace(m, curve=np.empty(0))
                                     for i, m in enumerate(ranking.matches)])


def known_in_pool(source, pool: Pool) -> dict:
    """{formula: (id, Structure)} of the structures in ``source`` (as ``xrdzoo.identify.known_structures`` reads it)
    whose chemical system is one of the pool's."""
    from xrdzoo.data import structures_of

    systems = set(pool.systems())
    return structures_of(source, lambda formula: _system(formula) in systems)


def _system(formula: str) -> tuple[str, ...]:
    from pymatgen.core import Composition

    return tuple(sorted(e.symbol for e in Composition(formula).elements))
