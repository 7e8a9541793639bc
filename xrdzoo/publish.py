"""Publishing: a training run's checkpoint becomes a shippable weight, scored on its test split, in a manifest.

It sits above training and evaluation (it scores what it writes), where the hub that serves weights does not.
"""

from __future__ import annotations

import filecmp
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pooch

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
        checkpoint.save(partial, model, {**extra, "weight": name}, dtype=dtype)
        if path.exists() and not force and not filecmp.cmp(partial, path, shallow=False):
            raise InputError(f"{str(path)!r} exists and holds another weight; give another --name or --folder, or "
                             "--force to replace it (nothing was written)")
        if data is not None:
            card["metrics"] = {"split": "test", "data_hash": data.hash,
                               **evaluate_model(checkpoint.read_model(partial), data, "test")}
        config = _config(partial, name, card)
    if manifest is not None:
        _enter(manifest, [config], entries)
    return config


def export_parts(checkpoint_path: str | os.PathLike, folder: str | os.PathLike, name: str,
                 element_counts: Sequence[Sequence[int]], manifest: str | os.PathLike | None = None,
                 **card: Any) -> list[WeightConfig]:
    """Write a fitted template member as several weights served as one (each file stays small): the templates of
    formulas with ``element_counts[0]`` elements (and any count no group names) go to ``<name>.safetensors``, which
    lists the others as its ``parts``; group i's to ``<name>_part<i>``. ``xrdzoo.load(name)`` joins them."""
    refuse_overwrite([checkpoint_path], manifest=manifest)
    entries = _manifest_entries(Path(manifest)) if manifest is not None else []
    member = checkpoint.read_model(checkpoint_path)
    meta = checkpoint.read_metadata(checkpoint_path)
    extra = {k: v for k, v in meta.items() if k not in ("format", "xrdzoo_version", "model")}
    counts = np.count_nonzero(member.templates.numbers, axis=1)
    named = np.isin(counts, [n for group in element_counts[1:] for n in group])
    groups = [~named] + [np.isin(counts, group) for group in element_counts[1:]]
    names = [name] + [f"{name}_part{i}" for i in range(1, len(groups))]
    configs = []
    for i, (part_name, rows) in enumerate(zip(names, groups)):
        path = checkpoint.save(Path(folder) / f"{part_name}.safetensors", member.take(np.flatnonzero(rows)),
                               {**extra, "weight": part_name}, dtype="float16")
        part_card = card if i == 0 else {"license": card.get("license", ""), "data": card.get("data", ""),
                                         "description": f"part {i} of {name} (the templates of "
                                                        f"{'/'.join(map(str, element_counts[i]))}-element formulas)"}
        configs.append(_config(path, part_name, {**part_card, "parts": names[1:]} if i == 0 else part_card))
    if manifest is not None:
        _enter(manifest, configs, entries)
    return configs


def _config(written: Path, name: str, card: dict) -> WeightConfig:
    """The config of the weight ``name`` whose file (``<name>.safetensors``) was written at ``written``."""
    return WeightConfig(name=name, sha256=pooch.file_hash(str(written), alg="sha256"), file=f"{name}.safetensors",
                        size=written.stat().st_size, **card)


def _enter(manifest: str | os.PathLike, configs: list[WeightConfig], entries: list[dict]) -> None:
    """Replace or add the configs' entries among the manifest's ``entries`` and write the manifest file."""
    new = []
    for config in configs:
        entry = {k: v for k, v in asdict(config).items() if k != "shipped" and v not in ((), "", None, {})}
        new.append({**entry, "urls": list(config.urls)} | ({"parts": list(config.parts)} if config.parts else {}))
    names = {entry["name"] for entry in new}
    entries = [e for e in entries if e["name"] not in names] + new
    with atomic_path(manifest) as partial:
        partial.write_text(json.dumps({"weights": sorted(entries, key=lambda e: e["name"])}, indent=2) + "\n")


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
