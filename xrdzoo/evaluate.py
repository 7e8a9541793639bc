"""Evaluation of a model on one split of a dataset, with the metrics of ``xrdzoo.metrics``."""

from __future__ import annotations

from xrdzoo.contracts import Predictor
from xrdzoo.data import Dataset
from xrdzoo.metrics import score_patterns


def evaluate_model(model: Predictor, data: Dataset, split: str = "test", batch_size: int = 64,
                   precision: str = "float32") -> dict[str, float]:
    """The default metrics (three modes for distances, peak recall/precision/F1) averaged over ``split``, the
    model answering in batches of ``batch_size`` at ``precision``.

    Formulas the model refuses are left out and counted under ``"n_unencodable"``; each formula is scored once,
    against its ground state (the first of its rows).
    """
    rows = data.select(split).ground_states()
    answers = model.answer(rows.formulas, batch_size, precision)
    return {"n": len(answers.kept), "n_unencodable": len(answers.refused),
            **score_patterns(answers.patterns.intensities, rows.patterns[answers.kept])}
