"""Publishing: a training run's checkpoint becomes a shippable weight, scored on its test split, in a manifest.

It sits above training and evaluation (it scores what it writes), where the hub that serves weights does not.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pooch
import torch

from xrdzoo import checkpoint
from xrdzoo.data import load_dataset
from xrdzoo.evaluate import evaluate_model
from xrdzoo.files import atomic_path
from xrdzoo.hub import WeightConfig


def export(checkpoint_path: str | os.PathLike, folder: str | os.PathLike, name: str, dtype: str = "float16",
           manifest: str | os.PathLike | None = None, test_data: str | os.PathLike | None = None,
           **card: Any) -> WeightConfig:
    """Write a checkpoint as a shippable weight ``<folder>/<name>.safetensors`` (floating-point tensors stored as
    ``dtype``) and return its config (sha256, size and the model-card fields in ``card``: urls, license, data,
    command, description). With ``test_data`` (a dataset file), the written weight itself is scored on that
    dataset's test split and the scores become its ``metrics``. With ``manifest``, the entry of that name in the
    manifest file is replaced or added."""
    meta = checkpoint.read_metadata(checkpoint_path)
    model = checkpoint.read_model(checkpoint_path)
    path = Path(folder) / f"{name}.safetensors"
    extra = {k: v for k, v in meta.items() if k not in ("format", "xrdzoo_version", "model")}
    checkpoint.save(path, model, {**extra, "weight": name}, dtype=getattr(torch, dtype))
    if test_data is not None:
        data = load_dataset(test_data)
        card["metrics"] = {"split": "test", "data_hash": data.hash,
                           **evaluate_model(checkpoint.read_model(path), data, "test")}
    config = WeightConfig(name=name, sha256=pooch.file_hash(str(path), alg="sha256"), file=path.name,
                          size=path.stat().st_size, **card)
    if manifest is not None:
        manifest = Path(manifest)
        entries = json.loads(manifest.read_text())["weights"] if manifest.exists() else []
        entry = {k: v for k, v in asdict(config).items() if k != "shipped" and v not in ((), "", None, {})}
        entry["urls"] = list(config.urls)
        entries = [e for e in entries if e["name"] != name] + [entry]
        with atomic_path(manifest) as partial:
            partial.write_text(json.dumps({"weights": sorted(entries, key=lambda e: e["name"])}, indent=2) + "\n")
    return config
