"""Template substitution: take a training structure of the same formula type, put the formula's elements on its
sites, rescale its volume, and simulate the pattern with the fast simulator.

Which template is used is the lever (the best of the 10 nearest scores far above the nearest one): ``ranker``
``"chemistry"`` takes, among the ``k`` nearest by element-fraction L1, the one whose element assignment is
chemically closest (summed element-property distance); ``"learned"`` scores every candidate with a small network
trained on the training split to predict how well a template's pattern matches (validated on the validation split).
With ``consensus`` K > 1 a new formula's answer is the pattern of the peaks the ranker's first K candidates agree on
(``consensus.agreed_peaks_first``): what the ranked candidates most expect. The first few are simulated, the rest
vote with their own pattern's peaks moved to the rescaled volume (:meth:`Template._rescaled_peaks`). Where the
formula's type has fewer than K templates (or none), the nearest structures of any type fill the K voters, each
with little weight beside a ranked candidate (``FILL_WEIGHT``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from xrdzoo.arrays import Arrays, array_strings, strings_array
from xrdzoo.contracts import Candidate, Cell
from xrdzoo.data import Dataset
from xrdzoo.metrics import MATCH_F1, f1_score, peak_pair_scores, pick_peaks, pick_peaks_of_rows
from xrdzoo.predictors import PredictorBase, solid_solution
from xrdzoo.formulas import N_ELEMENTS, Formula, formula_of, formula_text, formulas_of_cells
from xrdzoo.predictors.chemistry import batch_mapping_costs, element_table
from xrdzoo.predictors.elements import reference_cell
from xrdzoo.predictors.retrieval import FormulaIndex
from xrdzoo.xrd.pattern import N_POINTS
from xrdzoo.xrd.simulate import one_blas_thread, simulate_cell, simulate_cells, unscattered

RANKERS = ("chemistry", "learned")
VOLUMES = ("ratio", "fit", "template")
_COORD_SCALE = 1 << 16  # fractional coordinates are stored as int16 fixed point: 1.5e-5 of a cell edge
_CRYSTAL_SYSTEMS = (2, 15, 74, 142, 167, 194, 230)  # last space group of triclinic .. cubic
TYPES = ("binary", "ternary", "quaternary", "quinary+")  # the formula types scores are calibrated for, one by one
VOTER_PEAKS = 16  # a template keeps its own pattern's strongest picked peaks, for consensus voters (Template._ranked)
SIMULATED_VOTERS = 3  # the consensus simulates the ranker's first few; the rest vote with their rescaled own peaks
RESCALED_WEIGHT = 0.6  # ... each counting this much of a simulated one (both chosen on the validation split)
FILL_WEIGHT = 0.0025  # where a type has fewer than K candidates, the nearest other structures fill the K voters, each
#                       counting this much of a simulated candidate of score 1 (chosen on the validation split)
_ANGLE_SCALE = 256  # stored peak positions: uint16 in 1/256 degree 2-theta
_ROW_ARRAYS = ("lattices", "spacegroups", "e_above_hull", "peak_angles", "peak_heights")  # one entry per template row
_SITE_ARRAYS = ("coords", "numbers")  # one entry per site, rows' sites at offsets[i]:offsets[i + 1]
_IDENTITY = np.array([[1.0, 0.0]] * len(TYPES))  # (a, b) per type that leaves the ranker's logit as it is
_ROLES = 3  # the ranker sees the properties of the elements on up to three kinds of site, query and template
_N_FEATURES = 12 + 6 * 5 + len(_CRYSTAL_SYSTEMS) + 2 * _ROLES * 6  # what the ranker sees of a candidate (_features)


class _State(NamedTuple):
    """What a fitted member derives from its buffers once: the templates' formula index, space groups, material ids,
    energies above the hull (eV/atom, NaN where unknown), cell volumes and whether their own peaks are stored, one
    per template row, the buffers as arrays, and the templates per space group of each formula type asked so far."""

    index: FormulaIndex
    spacegroups: np.ndarray
    ids: list[str]
    e_above_hull: np.ndarray
    volumes: np.ndarray
    stored_peaks: list[bool]  # a template without them votes in a consensus simulated (Template._ranked)
    lattices: np.ndarray
    offsets: np.ndarray
    coords: np.ndarray
    numbers: np.ndarray
    prototypes: dict  # formula type -> templates per space group, filled as types are asked (Template._prototypes)


class Candidates(NamedTuple):
    """A query's k nearest same-type templates: their rows, L1 distances, chemistry costs, element assignments and
    the learned ranker's features (None without a learned ranker)."""

    rows: np.ndarray
    distance: np.ndarray
    costs: np.ndarray
    assignments: list[tuple[int, ...]]
    features: np.ndarray | None


class Choice(NamedTuple):
    """One ranked structure for a formula: template ``row``, the element put in place of each template element
    (None for a structure used as it is), the calibrated ``score`` (1 for a known structure, None for the chemistry
    ranker) and its ``kind``: known, template or nearest."""

    row: int
    assignment: tuple[int, ...] | None
    score: float | None
    kind: str


class Template(PredictorBase):
    """Template substitution: the chemically closest of the k nearest same-type training structures, its sites
    given the formula's elements, its volume rescaled, simulated; options: k, ranker, volume, consensus."""

    def __init__(self, k: int = 10, ranker: str = "chemistry", volume: str = "ratio", hidden: int = 64,
                 ranker_queries: int = 6000, consensus: int = 1):
        super().__init__()
        for name, value in (("k", k), ("consensus", consensus)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if ranker not in RANKERS:
            raise ValueError(f"ranker must be one of {', '.join(RANKERS)}, got {ranker!r}")
        if volume not in VOLUMES:
            raise ValueError(f"volume must be one of {', '.join(VOLUMES)}, got {volume!r}")
        self.k, self.ranker, self.volume, self.hidden, self.ranker_queries = k, ranker, volume, hidden, ranker_queries
        self.consensus = consensus
        self.register_array("lattices", np.zeros((0, 3, 3), np.float64))
        self.register_array("offsets", np.zeros(1, np.int64))
        self.register_array("coords", np.zeros((0, 3), np.int16))
        self.register_array("numbers", np.zeros(0, np.uint8))
        self.register_array("spacegroups", np.zeros(0, np.int16))
        self.register_array("ids", np.zeros(0, np.uint8))
        self.register_array("e_above_hull", np.zeros(0, np.float32))
        self.register_array("peak_angles", np.zeros((0, VOTER_PEAKS), np.uint16))  # see own_peaks
        self.register_array("peak_heights", np.zeros((0, VOTER_PEAKS), np.uint8))
        self.register_array("volume_per_element", np.zeros(N_ELEMENTS, np.float64))
        self.register_array("calibration", _IDENTITY.copy())  # per formula type: score = sigmoid(a * logit + b)
        self.scorer = _Ranker(hidden) if ranker == "learned" else None
        # What _state derives from the arrays, in a holder that copies share as they share the arrays
        # (predictors.with_consensus): built once, by whichever asks first.
        self._cache: list[_State | None] = [None]

    added_later = ("e_above_hull", "calibration", "peak_angles", "peak_heights")  # absent from older files

    @property
    def fitted(self) -> bool:
        return len(self.lattices) > 0

    def _fill_added_later(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """An older file's energies are unknown (NaN for each of its rows); its scores are the sigmoid of the
        ranker's logit, which it calibrated over all candidates, whatever the type; its templates' own peaks are not
        stored (no peaks: its consensus voters are all simulated)."""
        rows = len(state.get("lattices", ()))
        filled = {"e_above_hull": np.full(rows, np.nan, np.float32), "calibration": _IDENTITY.copy(),
                  "peak_angles": np.zeros((rows, VOTER_PEAKS), np.uint16),
                  "peak_heights": np.zeros((rows, VOTER_PEAKS), np.uint8)}
        return {name: value for name, value in filled.items() if name not in state}

    def _arrays_changed(self) -> None:
        self._cache[0] = None

    # --- fitting ------------------------------------------------------------------------------------------------

    def fit(self, train: Dataset, val: Dataset | None = None, progress: bool = True) -> dict:
        """Keep the training structures, fit the volume per element, and (``ranker="learned"``) train the ranker and
        calibrate its scores on ``val`` (:meth:`calibrate`; on ``train`` without it); returns the figures of both."""
        s = train.require_structures()
        self.lattices = s.lattices.astype(np.float64)
        self.offsets = s.offsets.astype(np.int64)
        fixed = np.round(np.mod(s.frac_coords, 1.0) * _COORD_SCALE).astype(np.int64) % _COORD_SCALE
        self.coords = (fixed - _COORD_SCALE // 2).astype(np.int16)
        self.numbers = s.numbers.astype(np.uint8)
        self.spacegroups = train.spacegroups.astype(np.int16)
        self.ids = strings_array(train.ids)
        self.e_above_hull = train.e_above_hull.astype(np.float32)
        self.peak_angles, self.peak_heights = own_peaks(train.patterns)
        self._arrays_changed()
        volumes = np.abs(np.linalg.det(s.lattices)) / np.diff(s.offsets)
        self.volume_per_element = _least_squares(self.templates.fractions(), volumes)
        if self.volume == "ratio":
            self.refine_volumes(progress)
        if self.scorer is None:
            return {}
        checked = val if val is not None and len(val) else train  # as the ranker's early stopping
        return self._fit_scorer(train, val, progress) | {"calibration": self.calibrate(checked, progress=progress)}

    def refine_volumes(self, progress: bool = True) -> None:
        """Refine the volumes per element on what ``volume="ratio"`` uses, a ratio of two formulas' volumes: for each
        template and the templates it could be rescaled from (:func:`_same_prototype_pairs`), the ratio of their
        fitted volumes should be the ratio of their cells' volumes per atom (:func:`_fitted_to_ratios`)."""
        state = self._state()
        pairs = _same_prototype_pairs(state.index, state.spacegroups, progress)
        self.volume_per_element = _fitted_to_ratios(state.index.fractions(), state.volumes / np.diff(state.offsets),
                                                    pairs, self.volume_per_element)

    def take(self, rows) -> Template:
        """A member of the same options, ranker and volumes that holds only the given template rows (to ship a large
        member as several files, :meth:`join` putting them back together)."""
        rows = np.asarray(rows, dtype=np.int64)
        part = Template(self.k, self.ranker, self.volume, hidden=self.hidden, ranker_queries=self.ranker_queries,
                        consensus=self.consensus)
        part.config = self.config
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        sites = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)] or [np.zeros(0, np.int64)])
        state, ids = self.state_dict(), array_strings(self.ids)
        state |= {name: state[name][rows] for name in _ROW_ARRAYS} | {name: state[name][sites] for name in _SITE_ARRAYS}
        state["offsets"] = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
        state["ids"] = strings_array([ids[r] for r in rows])
        part.load_state_dict(state)
        return part

    def join(self, other: Template) -> None:
        """Add the templates of ``other`` (a part made by :meth:`take`) after this member's own."""
        ids = array_strings(self.ids) + array_strings(other.ids)
        self.offsets = np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]])
        for name in (*_ROW_ARRAYS, *_SITE_ARRAYS):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        self.ids = strings_array(ids)
        self._arrays_changed()

    def _fit_scorer(self, train: Dataset, val: Dataset | None, progress: bool, epochs: int = 20) -> dict:
        """Train the ranker on (training formula, one of its k nearest other training formulas of its type) pairs,
        each scored by the peak F1 of the substituted, simulated template against the formula's own pattern; a
        listwise loss teaches it to put the best first. Early stopping on the validation split's pairs."""
        import torch

        x, f1, mask = self._pairs(train, limit=self.ranker_queries, progress=progress)
        vx, vf1, vmask = (self._pairs(val, limit=self.ranker_queries // 5, progress=progress)
                          if val is not None and len(val) else (x, f1, mask))
        network = _ranker_network(self.hidden)
        generator = torch.Generator().manual_seed(0)
        optimizer = torch.optim.Adam(network.parameters(), lr=3e-3, weight_decay=1e-5)
        best, best_state, history = -1.0, None, []
        for epoch in tqdm(range(epochs), desc="ranker epochs", disable=not progress, leave=False):
            network.train()
            for batch in torch.randperm(len(x), generator=generator).split(512):
                logits = network(x[batch]).squeeze(-1).masked_fill(~mask[batch], -1e9)
                target = torch.softmax((f1[batch] / 0.05).masked_fill(~mask[batch], -1e9), dim=1)
                loss = -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            chosen = _chosen_f1(network, vx, vf1, vmask)
            history.append({"epoch": epoch + 1, "val_template_f1": chosen})
            if chosen > best:
                best, best_state = chosen, {k: v.clone() for k, v in network.state_dict().items()}
        network.load_state_dict(best_state)
        self.scorer.load_state_dict({name: value.numpy() for name, value in network.state_dict().items()})
        chemistry = vf1.gather(1, vx[:, :, 0].masked_fill(~vmask, 1e9).argmin(1, keepdim=True))  # feature 0: cost
        return {"val_queries": len(vx), "val_nearest_template_f1": float(vf1[:, 0].mean()),
                "val_chemistry_template_f1": float(chemistry.mean()), "val_ranked_template_f1": best,
                "val_oracle_template_f1": float(vf1.masked_fill(~vmask, 0).max(1).values.mean()),
                "history": history}

    def calibrate(self, data: Dataset, per_type: int = 2000, progress: bool = True) -> dict[str, dict]:
        """Make the learned ranker's score of a formula's first candidate, at this member's ``k``, the chance that it
        matches (peak F1 >= MATCH_F1) the formula's ground-state pattern, for each formula type: a logistic fit of the
        match on the first candidate's logit over a seeded sample of up to ``per_type`` formulas of each type of
        ``data`` (the validation split), each type's fit drawn towards that of all types together (a type with few
        formulas takes theirs). The order of the candidates is unchanged. Returns per type the formulas used, their
        mean first score and the share of them that match."""
        if self.scorer is None:
            raise ValueError("only the learned ranker has scores to calibrate (ranker=learned)")
        data = data.ground_states()
        types = np.array([_type_of(formula_of(f)) for f in data.formulas])
        rng = np.random.default_rng(0)
        sample = np.concatenate([rng.permutation(np.flatnonzero(types == t))[:per_type] for t in range(len(TYPES))])
        logits, matched, kinds = [], [], []
        with one_blas_thread():
            for i in tqdm(sample, desc="calibration", disable=not progress, leave=False):
                query = formula_of(data.formulas[i])
                candidates = self._candidates([query], [len(self.templates.find(query))])[0]
                if candidates is None:
                    continue
                logit = self.scorer(candidates.features)
                first = int(np.argmax(logit))  # the ranker's first: its stable sort keeps the first of equal logits
                f1 = self._candidate_f1(query, candidates.rows[first], candidates.assignments[first],
                                        pick_peaks(data.patterns[i]))
                logits.append(logit[first])
                matched.append(float(f1 >= MATCH_F1))
                kinds.append(types[i])
        z, y, kinds = np.array(logits, np.float64), np.array(matched), np.array(kinds, np.int64)
        pooled = _logistic(z, y, _IDENTITY[0])
        self.calibration = np.array([_logistic(z[kinds == t], y[kinds == t], pooled) for t in range(len(TYPES))])
        score = _sigmoid(self.calibration[kinds, 0] * z + self.calibration[kinds, 1])
        return {name: {"formulas": int(np.sum(kinds == t)),
                       "mean first score": float(score[kinds == t].mean()) if np.any(kinds == t) else None,
                       "share first matched": float(y[kinds == t].mean()) if np.any(kinds == t) else None}
                for t, name in enumerate(TYPES)}

    def _candidate_f1(self, query: Formula, row: int, assignment: tuple[int, ...], truth) -> float:
        """Peak F1 of template ``row`` substituted with ``assignment`` for ``query``, simulated, against the picked
        peaks ``truth`` of the query's own pattern."""
        lattice, coords, numbers, _, _ = self.substituted_cell(query, row, assignment)
        return float(f1_score(*peak_pair_scores(pick_peaks(simulate_cell(lattice, coords, numbers)), truth)))

    def _pairs(self, data: Dataset, limit: int, progress: bool):
        """Features (queries, k, features), the peak F1 of each substituted candidate against the query's pattern
        (its ground state), and the mask of real candidates, for up to ``limit`` formulas of ``data`` (a seeded
        sample) whose type has a template; a formula's own structures are never its candidates."""
        data = data.ground_states()
        order = np.random.default_rng(0).permutation(len(data))
        xs, f1s, masks = [], [], []
        with tqdm(total=min(limit, len(data)), desc="ranker pairs", disable=not progress, leave=False) as bar, \
                one_blas_thread():
            for i in order:
                if len(xs) == limit:
                    break
                query = formula_of(data.formulas[i])
                candidates = self._candidates([query], [len(self.templates.find(query))])[0]
                if candidates is None:
                    continue
                rows, _, _, assignments, features = candidates
                truth = pick_peaks(data.patterns[i])
                f1 = [self._candidate_f1(query, r, a, truth) for r, a in zip(rows, assignments)]
                pad = self.k - len(rows)
                xs.append(np.pad(features, ((0, pad), (0, 0))))
                f1s.append(np.pad(f1, (0, pad)))
                masks.append(np.arange(self.k) < len(rows))
                bar.update()
        import torch

        return (torch.tensor(np.array(xs), dtype=torch.float32), torch.tensor(np.array(f1s), dtype=torch.float32),
                torch.tensor(np.array(masks)))

    # --- predicting ---------------------------------------------------------------------------------------------

    @property
    def templates(self) -> FormulaIndex:
        """The training structures' formulas, indexed by type."""
        return self._state().index

    def known_formulas(self, elements: Sequence[str], max_above_hull: float | None = None) -> list[str]:
        """The reduced formulas of this member's structures made of exactly ``elements`` (symbols), sorted; with
        ``max_above_hull`` (eV/atom) only those whose ground state is known to lie at most that far above the convex
        hull (members saved before energies were kept know none). A single element is known where it answers with
        its reference structure (:func:`~xrdzoo.predictors.elements.reference_cell`, a measured structure)."""
        state = self._state()
        numbers = [formula_of(symbol).numbers[0] for symbol in elements]
        rows = self.rows_made_of(numbers)
        if len(numbers) == 1 and not len(rows) and reference_cell(numbers[0]):
            return [formula_text(formula_of(elements[0]))]
        lowest: dict[str, float] = {}  # each formula's ground state: its lowest known energy above the hull
        for row in rows:
            text = formula_text(state.index.formula(row))
            lowest[text] = float(np.fmin(lowest.get(text, np.nan), state.e_above_hull[row]))
        return sorted(f for f, e in lowest.items() if max_above_hull is None or e <= max_above_hull)

    def rows_made_of(self, numbers: Sequence[int]) -> np.ndarray:
        """The rows of this member's structures made of exactly the elements ``numbers`` (atomic numbers)."""
        wanted = np.unique(np.asarray(numbers, np.int64))
        held = self._state().index.numbers
        if held.shape[1] < len(wanted):
            return np.zeros(0, np.int64)
        return np.flatnonzero((np.count_nonzero(held, axis=1) == len(wanted))
                              & (np.sort(held[:, : len(wanted)], axis=1) == wanted).all(axis=1))

    def _state(self) -> _State:
        if self._cache[0] is None:
            self._check_fitted()
            lattices, offsets, numbers = self.lattices, self.offsets, self.numbers
            self._cache[0] = _State(FormulaIndex(*formulas_of_cells(offsets, numbers)),
                                    self.spacegroups.astype(np.int64), array_strings(self.ids),
                                    self.e_above_hull.astype(np.float64), np.abs(np.linalg.det(lattices)),
                                    (self.peak_heights[:, 0] > 0).tolist(), lattices, offsets, self.coords, numbers,
                                    {})
        return self._cache[0]

    def _candidates(self, queries: Sequence[Formula], owns: Sequence[int]) -> list[Candidates | None]:
        """Each query's k nearest same-type templates other than its ``own`` structures (how many the templates hold
        of its formula), or None where it has none. Queries of one type with as many candidates are costed and
        featured together."""
        index, found = self._state().index, []
        for query, own in zip(queries, owns):
            rows, distance = index.nearest(query, self.k + own)
            keep = distance > 1e-9  # the query's own structures (distance 0) are known structures, not templates
            found.append((rows[keep][: self.k], distance[keep][: self.k]))
        costed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for (kind, _), members in _groups(queries, found, lambda query: query.kind).items():
            rows = np.array([found[i][0] for i in members])
            costs, assignments = batch_mapping_costs(np.array([queries[i].numbers for i in members]), kind,
                                                     index.numbers[rows, : len(kind)])
            costed.update(zip(members, zip(costs, assignments)))
        candidates: list[Candidates | None] = [None] * len(queries)
        for _, members in _groups(queries, found, lambda query: len(query.numbers)).items():
            rows, distance = (np.array([found[i][j] for i in members]) for j in (0, 1))
            costs, assignments = (np.array([costed[i][j] for i in members]) for j in (0, 1))
            features = (None if self.scorer is None else self._features(
                [queries[i] for i in members], rows, distance, costs, assignments))
            for j, i in enumerate(members):
                candidates[i] = Candidates(rows[j], distance[j], costs[j], [tuple(a) for a in assignments[j].tolist()],
                                           None if features is None else features[j])
        return candidates

    def _features(self, queries: Sequence[Formula], rows: np.ndarray, distance: np.ndarray, costs: np.ndarray,
                  assignments: np.ndarray) -> np.ndarray:
        """What the learned ranker sees of each (query, candidate template) pair, ``(queries, candidates,
        features)``, for queries with as many elements and candidates each."""
        state = self._state()
        k = rows.shape[1]
        numbers, counts = np.array([q.numbers for q in queries]), np.array([q.counts for q in queries])
        templates = state.index.numbers[rows, : numbers.shape[1]]  # (queries, k, elements)
        table = element_table()
        q, t = table[assignments - 1], table[templates - 1]  # (queries, k, elements, properties)
        spacegroups, sizes = state.spacegroups[rows], state.offsets[rows + 1] - state.offsets[rows]
        same_group = spacegroups[:, :, None] == spacegroups[:, None, :]
        system = np.eye(len(_CRYSTAL_SYSTEMS))[np.minimum(np.searchsorted(_CRYSTAL_SYSTEMS, spacegroups),
                                                          len(_CRYSTAL_SYSTEMS) - 1)]
        volume_change = np.log(self._volume_per_atom(numbers, counts / counts.sum(1, keepdims=True))[:, None] /
                               self._volume_per_atom(*state.index.composition(rows)))
        prototypes = np.array([self._prototypes(query.kind) for query in queries])  # (queries, space groups)
        of_kind = prototypes.sum(1, keepdims=True)  # the templates of the query's type
        of_prototype = np.take_along_axis(prototypes, spacegroups, 1)  # ... of the candidate's space group
        roles = np.lexsort((t[..., 0], np.broadcast_to(counts[:, None], templates.shape)), axis=-1)[..., :_ROLES]
        per_role = np.zeros((*rows.shape, 2, _ROLES, t.shape[-1]))  # sites by count, then electronegativity
        per_role[:, :, 0, : roles.shape[-1]] = np.take_along_axis(q, roles[..., None], 2)
        per_role[:, :, 1, : roles.shape[-1]] = np.take_along_axis(t, roles[..., None], 2)
        same_size = sizes[:, :, None] == sizes[:, None, :]
        each = [costs, distance, np.broadcast_to(np.arange(k) / self.k, rows.shape), (assignments == templates).mean(-1),
                volume_change, np.abs(volume_change), np.log1p(of_prototype),
                np.broadcast_to(np.log1p(of_kind), rows.shape), of_prototype / of_kind, same_group.mean(-1),
                (same_group & same_size).mean(-1), np.log(sizes)]  # one value per candidate
        return np.concatenate([np.stack(each, axis=-1), np.abs(q - t).sum(2), np.abs(q - t).max(2), q.mean(2),
                               t.mean(2), q.max(2) - q.min(2), system, per_role.reshape(*rows.shape, -1)], axis=-1)

    def _prototypes(self, kind: tuple[float, ...]) -> np.ndarray:
        """How many templates of a formula type have each space group, ``(231,)`` (counted once per type)."""
        state = self._state()
        if kind not in state.prototypes:
            state.prototypes[kind] = np.bincount(state.spacegroups[state.index.by_kind[kind]], minlength=231)
        return state.prototypes[kind]

    def _volume_per_atom(self, numbers: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        """The fitted volume per atom (at least 1 cubic Angstrom) of formulas given as atomic numbers and their element
        fractions (last axis, zero-padded), one or a stack (of formulas :meth:`_refusal` lets through: a member fitted
        when the table ended at Pu has 94 volumes)."""
        volumes = np.zeros(N_ELEMENTS + 1)  # row 0 takes the padding
        volumes[1 : len(self.volume_per_element) + 1] = self.volume_per_element
        return np.maximum((fractions * volumes[numbers]).sum(-1), 1.0)

    def _refusal(self, formula: Formula) -> str | None:
        """Elements without a fitted volume (beyond the fitted table) or without X-ray scattering factors (Es..Og, which
        include every element whose properties pymatgen lacks) are refused."""
        from pymatgen.core import Element

        beyond = [Element.from_Z(z).symbol for z in formula.numbers if z > len(self.volume_per_element)]
        if beyond:
            return (f"has no volume per atom for {', '.join(beyond)} (its table ends at "
                    f"{Element.from_Z(len(self.volume_per_element)).symbol})")
        missing = unscattered(formula.numbers)
        if missing:
            return (f"cannot simulate {', '.join(Element.from_Z(z).symbol for z in missing)}: no X-ray scattering "
                    "factors (the simulator's table ends at Cf)")
        return None

    def rank(self, formulas: Sequence[str], top: int = 1, new: int | None = None) -> list[list[Choice]]:
        """For each formula, up to ``top`` :class:`Choice`s, best first: its own known structures first
        (kind ``"known"``, ground state first, score 1), then the k nearest same-type templates in the ranker's
        order (``"template"``; the learned ranker's calibrated score, None for the chemistry ranker); with neither,
        the nearest structure of any type (``"nearest"``). A formula without a known structure gets up to ``new``
        choices (``top`` if None)."""
        state = self._state()
        new = top if new is None else new
        queries = [formula_of(f) for f in formulas]
        known = [state.index.find(q) for q in queries]
        asked = [i for i, rows in enumerate(known) if len(rows) < top]  # room for templates after the known
        found: list[Candidates | None] = [None] * len(queries)
        for i, candidates in zip(asked, self._candidates([queries[i] for i in asked], [len(known[i]) for i in asked])):
            found[i] = candidates
        if self.scorer is not None and any(c is not None for c in found):
            logits = self.scorer(np.concatenate([c.features for c in found if c is not None]))
            splits = np.cumsum([len(c.rows) for c in found if c is not None])[:-1]
            logits = iter(np.split(logits, splits))
        ranked = []
        for query, candidates, own in zip(queries, found, known):
            choices, limit = [Choice(int(row), None, 1.0, "known") for row in own], top if len(own) else new
            if candidates is not None:
                rows, _, costs, assignments, _ = candidates
                if self.scorer is None:  # ties go to the nearer (by L1) candidate: the sort is stable
                    order = np.argsort(costs, kind="stable")[: limit - len(own)]
                    score = [None] * len(order)
                else:
                    logit = next(logits)
                    a, b = self.calibration[_type_of(query)]
                    order = np.argsort(-logit, kind="stable")[: limit - len(own)]
                    score = _sigmoid(a * logit[order].astype(np.float64) + b).tolist()
                choices += [Choice(row, assignments[j], s, "template")
                            for j, row, s in zip(order.tolist(), rows[order].tolist(), score)]
            if not choices:
                choices = [Choice(state.index.closest(query)[0], None, None, "nearest")]
            ranked.append(choices[:limit])
        return ranked

    def cells(self, formulas: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int, bool]]:
        """The first-ranked cell of each formula (the ranker's first, as :meth:`choose`): (lattice, fractional
        coordinates, atomic numbers, template row, whether it was substituted)."""
        return [self.substituted_cell(formula_of(f), choices[0].row, choices[0].assignment)
                for f, choices in zip(formulas, self.rank(formulas))]

    def substituted_cell(self, query: Formula, row: int, assignment: tuple[int, ...] | None,
                         scale: float | None = None):
        """Template ``row`` with ``assignment``'s elements on its sites and its volume rescaled (as :meth:`cells`;
        ``scale``: the volume scale where :meth:`_scales` gave it already)."""
        state = self._state()
        a, b = state.offsets[row], state.offsets[row + 1]
        lattice = state.lattices[row].copy()
        coords = (state.coords[a:b].astype(np.float64) + _COORD_SCALE // 2) / _COORD_SCALE
        numbers = state.numbers[a:b].astype(np.int64)
        if assignment is None:
            return lattice, coords, numbers, row, False
        substitute = np.zeros(N_ELEMENTS + 1, np.int64)
        substitute[list(state.index.formula(row).numbers)] = assignment
        numbers = substitute[numbers]
        scale = self._scales(query, np.array([row]))[0] if scale is None else scale
        return lattice * float(scale) ** (1 / 3), coords, numbers, row, True

    def _scales(self, query: Formula, rows: np.ndarray) -> np.ndarray:
        """Volume of the substituted cell over the template's, for each of the templates ``rows``."""
        state = self._state()
        if self.volume == "template":
            return np.ones(len(rows))
        volume = self._volume_per_atom(*_composition(query))
        if self.volume == "ratio":
            return volume / self._volume_per_atom(*state.index.composition(rows))
        return volume * (state.offsets[rows + 1] - state.offsets[rows]) / state.volumes[rows]

    def _rescaled_peaks(self, query: Formula, rows: np.ndarray, scales: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored own peaks of templates ``rows`` (:func:`own_peaks`) where the substituted cell would put them,
        one template after another: 2-theta, intensity, and how many each template has. Each d-spacing grows with
        the cube root of the volume scale (:meth:`_scales`, or ``scales`` where given); peaks pushed past 180 degrees
        are dropped. Intensities stay the template's own (its elements', not the query's)."""
        heights = self.peak_heights[rows]
        scales = self._scales(query, rows) if scales is None else scales
        sines = np.sin(np.radians(self.peak_angles[rows] / (2 * _ANGLE_SCALE))) / np.cbrt(scales)[:, None]
        keep = (heights > 0) & (sines < 1)
        return np.degrees(2 * np.arcsin(sines[keep])), heights[keep].astype(np.float64), keep.sum(1)

    def _answer(self, formulas: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """The first-ranked patterns, ``(n, N_POINTS)``, and how each was made (see :meth:`_ranked`)."""
        ranked = self._ranked(formulas, 1)
        return np.array([c[0].pattern for c in ranked], dtype=np.float32).reshape(-1, N_POINTS), [c[0].how for c in ranked]

    def _ranked(self, formulas: Sequence[str], top: int) -> list[list[Candidate]]:
        """Up to ``top`` candidates per formula, each simulated, with its material id, space group, score and how it
        was made: on its parent's mixed sites for a doped compound or solid solution
        (:func:`solid_solution.candidates`), and a fractional formula without a parent read as a line compound, saying
        why. Each formula gets what it would get alone."""
        parents, reasons = solid_solution.parents(formulas, self)
        lines = iter(self._line_ranked([f for i, f in enumerate(formulas) if i not in parents], top))
        ranked = []
        for i in range(len(formulas)):
            if i in parents:
                ranked.append(solid_solution.candidates(self, parents[i], top))
            elif i in reasons:
                ranked.append([replace(c, how=f"{reasons[i]}; read as a line compound: {c.how}") for c in next(lines)])
            else:
                ranked.append(next(lines))
        return ranked

    def _line_ranked(self, formulas: Sequence[str], top: int) -> list[list[Candidate]]:
        """:meth:`_ranked` for formulas read as line compounds: up to ``top`` of each formula's choices (:meth:`rank`),
        simulated; a new formula's first, with ``consensus`` K > 1, the peaks its first K choices agree on."""
        if self.consensus > 1:
            from xrdzoo.predictors.consensus import Voters, agreed_peaks_first  # imports numba: only where used
        state, ranked = self._state(), []
        queries = [formula_of(f) for f in formulas]
        choices_of = self.rank(formulas, top, new=max(top, self.consensus))
        first = max(top, SIMULATED_VOTERS)  # the rest only vote, with their rescaled own peaks where stored
        simulated = [[j < first or not state.stored_peaks[c.row] for j, c in enumerate(choices)]
                     for choices in choices_of]
        scales_of = [self._scales(query, np.array([c.row for c in choices]))  # each choice's, used where substituted
                     for query, choices in zip(queries, choices_of)]
        cells = [Cell(*self.substituted_cell(query, row, assignment, scale)[:3])
                 for query, choices, simulate, scales in zip(queries, choices_of, simulated, scales_of)
                 for (row, assignment, _, _), s, scale in zip(choices, simulate, scales) if s]
        patterns = simulate_cells(cells)
        if self.consensus > 1:  # the simulated voters' peaks, all picked at once
            positions, intensities, sizes = pick_peaks_of_rows(patterns)
            peaks_from = np.r_[0, np.cumsum(sizes)]
        at = 0  # the formula's first simulated pattern: its choices' in their order
        voted = []  # (formula, its voters, who they are) of each formula answered by consensus
        for query, choices, simulate, scales in zip(queries, choices_of, simulated, scales_of):
            known = len(state.index.find(query))
            candidates = [self._candidate(choice, patterns[at + j], cells[at + j], j, known)
                          for j, choice in enumerate(choices[:top])]
            if self.consensus > 1 and choices[0].kind != "known":  # the first K vote: simulated, rescaled, filled
                votes = simulate[: self.consensus]
                n = sum(votes)  # the simulated voters are the formula's first n patterns
                rescaled = np.flatnonzero(~np.array(votes))
                voters = Voters.joined(
                    Voters(positions[peaks_from[at] : peaks_from[at + n]],
                           intensities[peaks_from[at] : peaks_from[at + n]], sizes[at : at + n],
                           [c.score for c, s in zip(choices, votes) if s],
                           np.full(n, 1.0 if choices[0].kind == "template" else FILL_WEIGHT)),
                    Voters(*self._rescaled_peaks(query, np.array([choices[j].row for j in rescaled], np.int64),
                                                 scales[rescaled]), [choices[j].score for j in rescaled],
                           np.full(len(rescaled), RESCALED_WEIGHT)))
                filled = self._nearest_beyond(query, self.consensus - len(votes), [c.row for c in choices])
                if len(filled):
                    voters = Voters.joined(voters, Voters(*self._rescaled_peaks(query, filled), [None] * len(filled),
                                                          np.full(len(filled), FILL_WEIGHT)))
                voted.append((len(ranked), voters, _voted_by(choices[0].kind, len(votes), len(filled))))
            ranked.append(candidates)
            at += sum(simulate)
        if voted:  # their agreed peaks, picked and scored together
            which, voters, who = zip(*voted)
            for i, candidates in zip(which, agreed_peaks_first([ranked[i] for i in which], list(voters), list(who))):
                ranked[i] = candidates
        return [candidates[:top] for candidates in ranked]

    def _nearest_beyond(self, query: Formula, n: int, taken: list[int]) -> np.ndarray:
        """The rows of the ``n`` structures of any type nearest to the query (element-fraction L1) beyond the rows
        ``taken``, among those with stored own peaks: the voters that fill a consensus."""
        if n < 1:
            return np.zeros(0, np.int64)
        rows, distance = self._state().index.nearest(query, n + len(taken), same_kind=False)
        keep = ~np.isin(rows, taken) & (distance > 1e-9) & (self.peak_heights[rows, 0] > 0)
        return rows[keep][:n]

    def _candidate(self, choice: Choice, pattern: np.ndarray, cell: Cell, position: int, known: int) -> Candidate:
        """The ``choice`` at ``position`` among its formula's, which has ``known`` known structures, as a
        :class:`Candidate` saying how it was made: its ``cell`` (where it is of the formula itself) and the
        ``pattern`` simulated from it."""
        row, _, score, kind = choice
        material, group = self.identity(row)
        if kind == "known":
            energy = self._state().e_above_hull[row]
            how = (f"known structure {material}, space group {group}"
                   + ("" if np.isnan(energy) else f", {energy:.3f} eV/atom above the hull")
                   + (f" (known polymorph {position + 1} of {known}, ground state first)" if known > 1 else ""))
        elif kind == "template":
            how = f"template {self.describe(row)}, elements substituted, volume rescaled"
        else:
            how = f"no template of its formula type: pattern of the nearest structure {self.describe(row)}"
            cell = None  # another compound's
        return Candidate(pattern, group, material, how, score, cell)

    def choose(self, formulas: Sequence[str], top: int = 1) -> list[list[tuple[int, tuple[int, ...] | None]]]:
        """For each formula, its first ``top`` ranked structures (:meth:`rank`), each as (row, the element put on
        each template element): a known structure with its own elements; None where its type has no template (the
        row is then the nearest structure of any type, used as it is). The ranker's order: ``consensus``, which needs
        the patterns, is not applied."""
        index = self._state().index
        return [[(row, index.formula(row).numbers if kind == "known" else assignment)
                 for row, assignment, _, kind in choices] for choices in self.rank(formulas, top)]

    def identity(self, row: int) -> tuple[str, int]:
        """Template ``row``'s material id and space group."""
        state = self._state()
        return state.ids[row], int(state.spacegroups[row])

    def describe(self, row: int) -> str:
        """Template ``row`` in words: material id, formula, space group."""
        material, group = self.identity(row)
        return f"{material} ({formula_text(self.templates.formula(row))}, space group {group})"


def _voted_by(kind: str, ranked: int, filled: int) -> str | None:
    """Who a consensus's voters are, in words: the ranker's first ``ranked`` choices (of ``kind``), then ``filled``
    nearest structures beyond them (None: the ranker's first K candidates, as agreed_peaks_first says by default)."""
    if kind == "nearest":
        return f"the {ranked + filled} nearest structures of other formula types"
    return f"the ranker's first {ranked} candidates and the {filled} nearest structures beyond them" if filled else None


def _composition(formula: Formula) -> tuple[np.ndarray, np.ndarray]:
    """A formula's atomic numbers and element fractions, as :meth:`Template._volume_per_atom` takes them."""
    return np.array(formula.numbers), np.array(formula.counts) / sum(formula.counts)


def _groups(queries: Sequence[Formula], found: list[tuple[np.ndarray, np.ndarray]], key) -> dict[tuple, list[int]]:
    """The positions of the queries with candidates (``found``: rows and distances each), grouped by ``key(query)``
    and their number of candidates: the queries :meth:`Template._candidates` handles together."""
    groups: dict[tuple, list[int]] = {}
    for i, (query, (rows, _)) in enumerate(zip(queries, found)):
        if len(rows):
            groups.setdefault((key(query), len(rows)), []).append(i)
    return groups


def own_peaks(patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pattern's strongest ``VOTER_PEAKS`` picked peaks in 2-theta order, as the member stores them: 2-theta in
    1/256 degree (uint16) and intensity of 100 (uint8, at least 10 as picked), zero-padded
    ``(patterns, VOTER_PEAKS)``."""
    angles = np.zeros((len(patterns), VOTER_PEAKS), np.uint16)
    heights = np.zeros((len(patterns), VOTER_PEAKS), np.uint8)
    for i, pattern in enumerate(patterns):
        peaks = pick_peaks(pattern)
        strongest = np.sort(np.argsort(-peaks.intensities, kind="stable")[:VOTER_PEAKS])
        angles[i, : len(strongest)] = np.round(peaks.positions[strongest] * _ANGLE_SCALE)
        heights[i, : len(strongest)] = np.round(peaks.intensities[strongest])
    return angles, heights


class _Ranker(Arrays):
    """The learned ranker: a layer norm, then three linear layers with GELUs between, mapping a candidate's features
    to its logit. Run with numpy; its arrays are named as the torch network it is trained as
    (:func:`_ranker_network`) names its own, and sized by its options, not by the data."""

    sized_by_data = False

    def __init__(self, hidden: int):
        super().__init__()
        shapes = {"0": (_N_FEATURES,), "1": (hidden, _N_FEATURES), "3": (hidden, hidden), "5": (1, hidden)}
        for layer, shape in shapes.items():
            self.register_array(f"{layer}.weight", np.zeros(shape, np.float32))
            self.register_array(f"{layer}.bias", np.zeros(shape[:1], np.float32))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """The logits of candidates' features ``(n, features)``, ``(n,)``."""
        w = self._arrays
        x = np.asarray(features, dtype=np.float32)
        x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w["0.weight"] + w["0.bias"]
        for layer in ("1", "3"):
            x = x @ w[f"{layer}.weight"].T + w[f"{layer}.bias"]
            x = 0.5 * x * (1 + _erf(x / math.sqrt(2)))  # a Python float keeps float32
        return (x @ w["5.weight"].T + w["5.bias"])[:, 0]


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function to 1.5e-7 (Abramowitz and Stegun 7.1.26), for the ranker's GELUs: scipy.special would add
    half a second of import to a process's first new formula."""
    t = 1 / (1 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1 - poly * np.exp(-x * x))


def _ranker_network(hidden: int):
    """The torch network :class:`_Ranker` is trained as (freshly initialised)."""
    from torch import nn

    return nn.Sequential(nn.LayerNorm(_N_FEATURES), nn.Linear(_N_FEATURES, hidden), nn.GELU(),
                         nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))


def _type_of(formula: Formula) -> int:
    """The index in :data:`TYPES` of a formula's type (a single element counts as binary)."""
    return min(max(len(formula.numbers), 2), 5) - 2


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


def _logistic(z: np.ndarray, matched: np.ndarray, prior: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """(a, b) of ``P(matched) = sigmoid(a * z + b)`` maximising the log-likelihood less ``strength / 2`` times the
    squared distance to ``prior``, with ``a >= 0`` so that a higher logit never scores lower."""
    from scipy.optimize import minimize

    x = np.column_stack([z, np.ones_like(z)])

    def loss(w):
        t = x @ w
        value = np.sum(np.logaddexp(0, t) - matched * t) + strength / 2 * np.sum((w - prior) ** 2)
        return value, x.T @ (_sigmoid(t) - matched) + strength * (w - prior)

    return minimize(loss, prior, jac=True, method="L-BFGS-B", bounds=[(0, None), (None, None)],
                    options={"gtol": 1e-10, "ftol": 1e-14}).x


def _chosen_f1(network, x, f1, mask) -> float:
    """Mean pattern F1 of the template the ranker puts first."""
    import torch

    network.eval()
    with torch.no_grad():
        logits = network(x).squeeze(-1).masked_fill(~mask, -1e9)
    return float(f1.gather(1, logits.argmax(1, keepdim=True)).mean())


def _same_prototype_pairs(index: FormulaIndex, spacegroups: np.ndarray, progress: bool,
                          neighbours: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(query rows, template rows): each structure with those of its ``neighbours`` nearest same-type structures (by
    element-fraction L1) that have another formula and its space group, a template it could be rescaled from."""
    queries, templates = [], []
    for row in tqdm(range(len(index)), desc="volume pairs", disable=not progress, leave=False):
        rows, distance = index.nearest(index.formula(row), neighbours + 1)
        rows = rows[(distance > 1e-9) & (spacegroups[rows] == spacegroups[row])]
        queries.append(np.full(len(rows), row))
        templates.append(rows)
    return (np.concatenate(queries or [np.zeros(0, np.int64)]).astype(np.int64),
            np.concatenate(templates or [np.zeros(0, np.int64)]).astype(np.int64))


def _fitted_to_ratios(fractions: np.ndarray, volumes: np.ndarray, pairs: tuple[np.ndarray, np.ndarray],
                      start: np.ndarray) -> np.ndarray:
    """Volumes per element refined, from ``start``, so that for each (query, template) pair of ``pairs`` the ratio of
    their fraction-weighted volumes matches the ratio of their cells' volumes per atom (a robust fit of the log
    ratio: a few pairs are different structures under one space group). Ratios do not fix the overall scale, so the
    refined volumes are scaled to keep the median of the queries' volumes under ``start``; elements in no pair keep
    their start."""
    from scipy.optimize import least_squares

    query, template = fractions[pairs[0]], fractions[pairs[1]]
    usable = (query @ start > 0) & (template @ start > 0)  # a ratio of two volumes
    query, template = query[usable], template[usable]
    free = np.flatnonzero((query.sum(0) + template.sum(0) > 0) & (start > 0))
    if not len(free):
        return start
    target = np.log(volumes[pairs[0][usable]] / volumes[pairs[1][usable]])

    def volumes_of(log_volumes):
        refined = start.copy()
        refined[free] = np.exp(log_volumes)
        return refined

    def residuals(log_volumes):
        v = volumes_of(log_volumes)
        return np.log(query @ v) - np.log(template @ v) - target

    def jacobian(log_volumes):
        v = volumes_of(log_volumes)
        return (query[:, free] / (query @ v)[:, None] - template[:, free] / (template @ v)[:, None]) * v[free]

    fit = least_squares(residuals, np.log(start[free]), jac=jacobian, loss="soft_l1", f_scale=0.05, max_nfev=200)
    refined = volumes_of(fit.x)
    refined[free] *= np.median(query @ start) / np.median(query @ refined)
    return refined


def _least_squares(fractions: np.ndarray, volumes: np.ndarray) -> np.ndarray:
    """Volume per atom of each element (non-negative) such that a formula's volume per atom is the fraction-weighted
    sum, fitted on relative error (a few porous or molecular cells hold hundreds of cubic Angstrom per atom and would
    dominate a plain fit); elements absent from the training formulas get the median volume per atom."""
    from scipy.optimize import nnls

    present = fractions.sum(0) > 0
    coefficients = np.full(fractions.shape[1], float(np.median(volumes)))
    coefficients[present], _ = nnls(fractions[:, present] / volumes[:, None], np.ones(len(volumes)))
    return coefficients
