"""Checkpoints: a model's tensors in safetensors and everything else as JSON metadata. Nothing is unpickled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from xrdzoo.version import __version__
from xrdzoo.contracts import FittedBackbone, FittedPredictor
from xrdzoo.errors import InputError
from xrdzoo.files import atomic_path
from xrdzoo.model import XRDModel, from_config
from xrdzoo.registry import PluginError

FORMAT = "xrdzoo-checkpoint/1"
METADATA_KEY = "xrdzoo"
DIGEST_KEY = "tensors_sha256"  # in the metadata: sha256 of every tensor's name, dtype, shape and bytes (see digest)


class CheckpointError(InputError):
    """A file that is not a usable xrdzoo checkpoint."""


def save(path: str | Path, model: XRDModel, metadata: dict[str, Any] | None = None,
         dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (a crash mid-write leaves the old file intact).

    ``metadata`` (JSON-able: training settings, data hash and split, metrics) is stored beside the model config;
    ``dtype`` (e.g. ``torch.float16``) stores float32 tensors in a smaller type (float64 ones, such as template
    lattices, are kept exact).
    """
    path = Path(path)
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        tensors[name] = tensor.to(dtype) if dtype is not None and tensor.dtype == torch.float32 else tensor
    meta = {"format": FORMAT, "xrdzoo_version": __version__, "model": model.config, **(metadata or {}),
            DIGEST_KEY: digest(tensors)}
    with atomic_path(path) as partial:
        save_file(tensors, str(partial), metadata={METADATA_KEY: json.dumps(meta)})
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without reading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; give a .safetensors path or a weight name")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file ({error}); re-download or re-save it")
    if raw is None:
        raise CheckpointError(f"{str(path)!r} has no xrdzoo metadata; save checkpoints with xrdzoo.checkpoint.save")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{str(path)!r} has damaged metadata ({error}); re-download or re-save it") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} has format {meta.get('format')!r}; this xrdzoo reads {FORMAT!r}")
    return meta


def read_model(path: str | Path) -> XRDModel:
    """Rebuild a model from a checkpoint's metadata alone and load its tensors (float32, strict checks)."""
    meta = read_metadata(path)
    config = meta["model"]
    try:
        model = from_config(config)
    except PluginError as error:
        made_with = ", ".join(sorted(set(config.get("packages", {}).values())))
        raise PluginError(f"{str(path)!r} needs a plugin that is not usable here ({error}); it was made with "
                          f"{made_with}: install those packages") from error
    expected = model.state_dict()
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file ({error}); re-download or re-save "
                              "it") from None
    if DIGEST_KEY in meta and digest(tensors) != meta[DIGEST_KEY]:
        raise CheckpointError(f"{str(path)!r} is damaged: its tensors do not match the digest saved with them; "
                              "re-download or re-save it")
    missing, unexpected = sorted(expected.keys() - tensors.keys()), sorted(tensors.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(f"{str(path)!r} does not match its config: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]} tensors")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape and not _resizable(model, name):
            raise CheckpointError(f"{str(path)!r}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                                  f"the config gives {tuple(expected[name].shape)}")
        if tensor.is_floating_point():
            tensors[name] = tensor.to(expected[name].dtype)
    model.load_state_dict(tensors)
    model.metadata = meta
    return model


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 (hex) of tensors' names, dtypes, shapes and bytes, in name order. ``load`` checks it where the file
    has one; files saved without (older checkpoints, the shipped weights, which the hub checks by sha256) load
    without this check."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        hasher.update(f"{name}:{str(tensor.dtype)}:{tuple(tensor.shape)}\n".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def _resizable(model: XRDModel, name: str) -> bool:
    """Buffers of fitted members (the knn baseline's references, a template predictor's structures) take whatever
    size the checkpoint holds."""
    fitted = isinstance(model, FittedPredictor) or isinstance(getattr(model, "backbone", None), FittedBackbone)
    return fitted and name in dict(model.named_buffers())
