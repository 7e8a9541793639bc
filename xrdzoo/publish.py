"""Publishing: a training run's checkpoint becomes a shippable weight, scored on its test split, in a manifest.

It sits above training and evaluation (it scores what it writes), where the hub that serves weights does not.
"""

from __future__ import annotations

import filecmp
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
from xrdzoo.errors import InputError
from xrdzoo.files import atomic_path, refuse_overwrite
from xrdzoo.hub import WeightConfig


DTYPES = ("float16", "bfloat16", "float32")  # storage types that keep a float32 weight's values (rounded, not zeroed)


def export(checkpoint_path: str | os.PathLike, folder: str | os.PathLike, name: str, dtype: str = "float16",
           manifest: str | os.PathLike | None = None, test_data: str | os.PathLike | None = None,
           force: bool = False, **card: Any) -> WeightConfig:
    """Write a checkpoint as a shippable weight ``<folder>/<name>.safetensors`` (floating-point tensors stored as
    ``dtype``, one of :data:`DTYPES`) and return its config (sha256, size and the model-card fields in ``card``:
    urls, license, data, command, description). With ``test_data`` (a dataset file), the written weight itself is
    scored on that dataset's test split and the scores become its ``metrics``. With ``manifest``, the entry of that
    name in the manifest file is replaced or added.

    Everything is checked before anything is written: the name (a bare weight name, no path), the dtype, the
    manifest and the test data; an existing different weight file of that name is replaced only with ``force``."""
    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)} (integer types would zero the "
                         "weights)")
    if not name or Path(name).name != name or "\\" in name or name.startswith("."):
        raise InputError(f"--name {name!r} must be a weight name such as resnet20_onehot.mp_abc3, not a path")
    path = Path(folder) / f"{name}.safetensors"
    refuse_overwrite([checkpoint_path, test_data], name=path, manifest=manifest)
    entries = _manifest_entries(Path(manifest)) if manifest is not None else []
    data = load_dataset(test_data) if test_data is not None else None
    meta = checkpoint.read_metadata(checkpoint_path)
    model = checkpoint.read_model(checkpoint_path)
    extra = {k: v for k, v in meta.items() if k not in ("format", "xrdzoo_version", "model")}
    with atomic_path(path) as partial:
        checkpoint.save(partial, model, {**extra, "weight": name}, dtype=getattr(torch, dtype))
        if path.exists() and not force and not filecmp.cmp(partial, path, shallow=False):
            raise InputError(f"{str(path)!r} exists and holds another weight; give another --name or --folder, or "
                             "--force to replace it (nothing was written)")
        if data is not None:
            card["metrics"] = {"split": "test", "data_hash": data.hash,
                               **evaluate_model(checkpoint.read_model(partial), data, "test")}
        config = WeightConfig(name=name, sha256=pooch.file_hash(str(partial), alg="sha256"), file=path.name,
                              size=partial.stat().st_size, **card)
    if manifest is not None:
        entry = {k: v for k, v in asdict(config).items() if k != "shipped" and v not in ((), "", None, {})}
        entry["urls"] = list(config.urls)
        entries = [e for e in entries if e["name"] != name] + [entry]
        with atomic_path(manifest) as partial:
            partial.write_text(json.dumps({"weights": sorted(entries, key=lambda e: e["name"])}, indent=2) + "\n")
    return config


def _manifest_entries(manifest: Path) -> list[dict]:
    """The entries of a weights manifest file (none if it does not exist yet), or a one-line error if it is not
    one."""
    if not manifest.exists():
        return []
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["weights"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                    for e in entries):
            raise ValueError("'weights' must be a list of entries, each with a name")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"--manifest {str(manifest)!r} is not a weights manifest ({type(error).__name__}: "
                         f"{error}); nothing was written") from None
    return entries
