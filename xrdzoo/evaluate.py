"""Evaluation of a model on one split of a dataset, with the metrics of ``xrdzoo.metrics``."""

from __future__ import annotations

import numpy as np

from xrdzoo.data import Dataset
from xrdzoo.metrics import evaluate
from xrdzoo.model import XRDModel


def evaluate_model(model: XRDModel, data: Dataset, split: str = "test") -> dict[str, float]:
    """The default metrics (three modes for distances, peak recall/precision/F1) averaged over ``split``.

    Formulas the model's encoder cannot take are left out and counted under ``"n_unencodable"``.
    """
    rows = data.select(split)
    answers = model.answer(rows.formulas)
    results = evaluate(answers.patterns, rows.patterns[answers.kept])
    return {"n": len(answers.kept), "n_unencodable": len(answers.refused),
            **{k: float(np.mean(v)) for k, v in results.items()}}
