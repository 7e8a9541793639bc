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
    keep, skipped = model.encodable(rows.formulas)
    predicted = model.predict([rows.formulas[i] for i in keep])
    results = evaluate(predicted, rows.patterns[keep])
    return {"n": len(keep), "n_unencodable": len(skipped), **{k: float(np.mean(v)) for k, v in results.items()}}
