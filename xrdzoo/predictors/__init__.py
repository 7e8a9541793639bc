"""Zoo members that map formulas to patterns through known structures: retrieval and template substitution.

Each is a *predictor*, registered in the entry-point group ``xrdzoo.predictors`` and built by
``xrdzoo.create_predictor(name, **options)``. The contract they share with the encoder + backbone network
(``xrdzoo.model.XRDModel``), written as ``xrdzoo.contracts.FittedPredictor``:

- ``config``: JSON-able, enough to rebuild the member (stored in the checkpoint);
- ``fit(train, val)``: learn from the training split of a ``xrdzoo.data.Dataset`` (its structures and patterns),
  returning a few validation figures; what it learns lives in numpy arrays (``state_dict``, see
  ``xrdzoo.arrays.Arrays``), saved as safetensors: a fitted member loads and answers without importing torch;
- ``answer(formulas, batch_size, precision)``: an ``xrdzoo.contracts.Answers`` (the formulas it kept, the reason
  for each it refused, their patterns ``(n, N_POINTS)`` on the 0..100 scale, and how each was made: which template, which
  fallback);
- ``predict(formulas, batch_size, precision)``: the patterns alone, raising at the first formula it cannot take.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from xrdzoo.arrays import Arrays
from xrdzoo.contracts import Answers, Candidate
from xrdzoo.errors import InputError, at_least_one
from xrdzoo.formulas import EncodingError, Formula, formula_of
from xrdzoo.xrd.simulate import one_blas_thread


class PredictorBase(Arrays):
    """Base of the fitted members (``xrdzoo.contracts.FittedPredictor``): what they learned is numpy arrays of the
    size a loaded state dict gives them (:class:`~xrdzoo.arrays.Arrays`), formulas are checked by
    :func:`~xrdzoo.formulas.formula_of`."""

    config: dict

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` has run (or a fitted state was loaded)."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"the {self.config['predictor']} predictor is not fitted: train it with "
                               f"`xrdzoo train --predictor {self.config['predictor']} --data ...`")

    def answer(self, formulas: Sequence[str], batch_size: int = 64, precision: str = "float32",
               top: int = 1) -> Answers:
        """The patterns of the formulas this member can read, how each was made, and why it refused the others; up to
        ``top`` ranked candidates each where the member ranks several (:meth:`_ranked`). ``batch_size`` and
        ``precision`` are the contract's, for networks: a fitted predictor runs none, so they change nothing."""
        at_least_one(top, "top")
        kept, refused = [], {}
        for i, formula in enumerate(formulas):
            try:
                self._check(formula)
                kept.append(i)
            except EncodingError as error:
                refused[formula] = str(error)
        with one_blas_thread(), collector_paused():  # members simulate cell after cell
            return Answers.of(kept, refused, self._ranked([formulas[i] for i in kept], top))

    def predict(self, formulas: Sequence[str], batch_size: int = 64, precision: str = "float32") -> np.ndarray:
        """The patterns ``(n, N_POINTS)``; raises ``EncodingError`` at the first formula this member cannot take."""
        for formula in formulas:
            self._check(formula)
        with one_blas_thread(), collector_paused():
            return self._answer(formulas)[0]

    def _check(self, formula: str) -> None:
        """Raise ``EncodingError`` if this member cannot read ``formula`` or cannot answer it (:meth:`_refusal`)."""
        reason = self._refusal(formula_of(formula))
        if reason is not None:
            raise EncodingError(f"formula {formula!r}: the {self.config['predictor']} member {reason}")

    def _refusal(self, formula: Formula) -> str | None:
        """Why this member cannot answer a formula it reads (None: it can); members that cannot use some element
        say so here."""
        return None

    def _answer(self, formulas: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """The patterns of readable formulas and how each was made; what a member implements."""
        raise NotImplementedError

    def _ranked(self, formulas: Sequence[str], top: int) -> list[list[Candidate]]:
        """Up to ``top`` candidates per readable formula, best first; a member that ranks overrides this (the
        default is :meth:`_answer`'s one answer, saying so when more were asked)."""
        patterns, how = self._answer(formulas)
        more = f" (this member gives one answer; {top} were asked)" if top > 1 else ""
        return [[Candidate(p, 0, "", h + more)] for p, h in zip(patterns, how)]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with Python's cyclic garbage collector off, then leave it as it was. Answering a batch makes
    tens of thousands of small objects that live until the batch is answered (candidates, their choices); each time
    enough have accumulated, the collector walks every object the process holds, the hundred thousand or more its
    imports made included (pausing it made mixed answers 3 to 15 % faster). Answers make no reference cycles, so
    nothing waits on it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def with_consensus(member, consensus: int):
    """``member`` answering a new formula with the peaks its first ``consensus`` candidates agree on (1: its first
    alone): a shallow copy of a template member, the arrays shared; a one-line error for a member without one."""
    at_least_one(consensus, "consensus")
    if not hasattr(member, "consensus"):
        raise InputError(f"a {type(member).__name__} has no consensus to set: only template members answer by one")
    if member.consensus == consensus:
        return member
    copied = copy.copy(member)
    copied.consensus = consensus
    return copied
