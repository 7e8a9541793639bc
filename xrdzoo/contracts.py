"""The contracts between xrdzoo and its components, built-in or from plugins, as ``typing.Protocol`` classes.

docs/architecture.md and docs/plugins.md describe them in words; these are what type checkers and ``isinstance``
see. Meeting a contract needs no base class; the one thing a component imports from here is :class:`Answers`, the
value a predictor returns (its patterns a batch :class:`~xrdzoo.xrd.pattern.Pattern`, so this module sits on the
xrd layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from xrdzoo.xrd.pattern import N_POINTS, Pattern

if TYPE_CHECKING:
    import torch
    from pymatgen.core import Structure


@runtime_checkable
class Encoder(Protocol):
    """Formulas to tensors ``(n, *shape)``; ``config()`` rebuilds it; a formula it cannot take raises
    ``xrdzoo.encoders.EncodingError``."""

    shape: tuple[int, ...]

    def encode(self, formulas: Sequence[str]) -> torch.Tensor: ...

    def config(self) -> dict: ...


@runtime_checkable
class FittedBackbone(Protocol):
    """A backbone fitted rather than trained (``mean``, ``knn``): ``xrdzoo train`` calls ``fit`` once on the
    training split (targets are patterns / 100); what it learns lives in buffers, which take the size a checkpoint
    gives them."""

    def fit(self, inputs: torch.Tensor, targets: torch.Tensor) -> None: ...


class Loss(Protocol):
    """``loss(pred, true)``: a scalar tensor from two ``(n, N_POINTS)`` batches on the 0..1 scale."""

    def __call__(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor: ...


class Metric(Protocol):
    """``metric(pred, true)``: one value per pattern pair, ``(n,)``, from ``(n, N_POINTS)`` model-frame arrays on
    the 0..100 scale; an attribute ``takes_modes = False`` makes ``evaluate`` score it once instead of in each mode."""

    def __call__(self, pred: np.ndarray, true: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Weight(Protocol):
    """A pretrained weight as a weights provider returns it: an ``xrdzoo.hub.WeightConfig`` (name, sha256, file,
    urls; the rest of the model card optional)."""

    name: str
    sha256: str
    file: str
    urls: tuple[str, ...]


class Cell(NamedTuple):
    """A crystal structure as arrays: lattice rows ``(3, 3)`` in Angstrom, fractional ``coords`` ``(m, 3)``, atomic
    ``numbers`` ``(m,)`` and their ``occupancies`` ``(m,)`` (None: every site full); a mixed site is one entry per
    element at the same coordinates."""

    lattice: np.ndarray
    coords: np.ndarray
    numbers: np.ndarray
    occupancies: np.ndarray | None = None

    def structure(self) -> Structure:
        """The cell as a pymatgen Structure (a mixed site as one site of several species), e.g. to write as a CIF."""
        from pymatgen.core import Element, Lattice, Structure

        occupancies = np.ones(len(self.numbers)) if self.occupancies is None else self.occupancies
        places: dict[tuple[float, ...], dict[str, float]] = {}
        for xyz, z, occupancy in zip(np.asarray(self.coords, float), self.numbers, occupancies):
            places.setdefault(tuple(np.round(xyz, 6)), {})[Element.from_Z(int(z)).symbol] = float(occupancy)
        return Structure(Lattice(self.lattice), list(places.values()), list(places))


@dataclass(frozen=True)
class Candidate:
    """One ranked answer for one formula: its ``pattern`` ``(N_POINTS,)`` (0..100), the ``spacegroup`` of the
    structure it came from (0: none or unknown), its ``source`` (a material id, or the network), ``how`` it was made,
    its ``score``: the calibrated chance that it matches the formula's true pattern (peak F1 >= 0.8), 1 for a known
    structure of the formula itself, None where the member has no calibrated score; and the ``cell`` whose pattern it
    is, where the member has one of the formula itself (a known structure, a substituted template), else None."""

    pattern: np.ndarray
    spacegroup: int
    source: str
    how: str
    score: float | None = None
    cell: Cell | None = field(default=None, repr=False, compare=False)

    @property
    def known(self) -> bool:
        """Whether the candidate is a known structure of the formula itself (score 1), not a prediction."""
        return self.score == 1.0


@dataclass(frozen=True)
class Answers:
    """What a zoo member made of a batch of formulas, in one pass: the indices of those it ``kept``, the reason it
    ``refused`` each of the others ({formula as given: one-line reason}), the ``patterns`` of the kept ones (a batch
    :class:`Pattern` on the model frame, ``len(kept)`` rows of 0..100; a member may give the ``(len(kept), N_POINTS)``
    array, which becomes one) and ``how`` each was made (one line each, e.g. which template). ``candidates``, where
    the member ranks several answers (``answer(..., top=K)``), holds up to K :class:`Candidate` per kept formula,
    best first; ``patterns`` and ``how`` are the first ones'."""

    kept: list[int]
    refused: dict[str, str]
    patterns: Pattern
    how: list[str]
    candidates: list[list[Candidate]] | None = None

    def __post_init__(self):
        if not isinstance(self.patterns, Pattern):
            object.__setattr__(self, "patterns", Pattern.from_frame(np.reshape(self.patterns, (-1, N_POINTS))))

    @classmethod
    def of(cls, kept: list[int], refused: dict[str, str], candidates: list[list[Candidate]]) -> Answers:
        """Answers from ranked candidates (at least one per kept formula)."""
        patterns = np.array([c[0].pattern for c in candidates] or np.zeros((0, N_POINTS)), dtype=np.float32)
        return cls(kept, refused, patterns, [c[0].how for c in candidates], candidates)

    @classmethod
    def of_formulas(cls, formulas: list[str], found: dict[str, list[Candidate] | str], top: int | None = None
                    ) -> Answers:
        """Answers to ``formulas`` from ``found`` = {formula: its ranked candidates, or the reason it was refused} (as
        :meth:`by_formula` gives), at most ``top`` candidates each."""
        kept = [i for i, f in enumerate(formulas) if not isinstance(found[f], str)]
        refused = {f: found[f] for f in formulas if isinstance(found[f], str)}
        return cls.of(kept, refused, [found[formulas[i]][:top] for i in kept])

    def by_formula(self, formulas: list[str]) -> dict[str, list[Candidate] | str]:
        """{formula: its ranked candidates, or the reason it was refused} for ``formulas``, the batch answered."""
        ranked = dict(zip((formulas[i] for i in self.kept), self.ranked()))
        return {f: ranked[f] if f in ranked else self.refused[f] for f in formulas}

    def ranked(self) -> list[list[Candidate]]:
        """The candidates of each kept formula, best first: one each (no score) where the member ranks none."""
        if self.candidates is not None:
            return self.candidates
        return [[Candidate(pattern, 0, "", how)] for pattern, how in zip(self.patterns.intensities, self.how)]


@runtime_checkable
class Predictor(Protocol):
    """What every zoo member meets, the encoder + backbone network included: formulas in, patterns out.

    ``answer`` takes any formulas and says what it refused (``top``: how many ranked candidates per formula a member
    that ranks may return; the others answer one and say so); ``predict`` is its strict form for formulas a caller
    vouches for, raising ``xrdzoo.encoders.EncodingError`` at the first it cannot take."""

    config: dict

    def answer(self, formulas: Sequence[str], batch_size: int = 64, precision: str = "float32",
               top: int = 1) -> Answers: ...

    def predict(self, formulas: Sequence[str], batch_size: int = 64, precision: str = "float32") -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class KnowsStructures(Protocol):
    """A member that holds structures of real compounds (the template members): ``known_formulas(elements,
    max_above_hull)`` are the reduced formulas of those made of exactly ``elements`` (with ``max_above_hull``, in
    eV/atom, only those whose ground state is known to lie at most that far above the convex hull), which identify
    ranks whatever their size."""

    def known_formulas(self, elements: Sequence[str], max_above_hull: float | None = None) -> list[str]: ...


@runtime_checkable
class FittedPredictor(Predictor, Protocol):
    """A predictor fitted on a dataset's training split (its structures and patterns): ``retrieval``,
    ``template``; ``fit`` takes the training and validation ``xrdzoo.data.Dataset`` and returns JSON-able
    validation figures."""

    def fit(self, train: Any, val: Any = None, progress: bool = True) -> dict: ...
