"""Checkpoints: a model's tensors in safetensors and everything else as JSON metadata, and the run folders training
writes (best, last, history, the state to resume from). Nothing is unpickled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from xrdzoo.contracts import FittedBackbone, FittedPredictor
from xrdzoo.errors import InputError
from xrdzoo.files import atomic_path
from xrdzoo.model import XRDModel, from_config
from xrdzoo.registry import PluginError
from xrdzoo.version import __version__

FORMAT = "xrdzoo-checkpoint/1"
# A run folder: the best and last checkpoints, the history as JSON, and the state a run resumes from (tensors whose
# names its trainer chooses, with its settings as JSON metadata under STATE_KEY).
BEST, LAST, STATE, HISTORY = "best.safetensors", "last.safetensors", "train_state.safetensors", "history.json"
STATE_KEY = "xrdzoo-train"
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


def write_run(out: str | Path, model: XRDModel, metadata: dict[str, Any], history: list[dict], best: bool,
              state: tuple[dict[str, torch.Tensor], dict] | None = None) -> None:
    """Write a run folder: the best checkpoint (if ``best``), the last one, the history, then the ``state``
    (tensors, JSON-able settings) to resume from. Each file is replaced atomically and the state goes last and
    whole, so a kill at any instant leaves a state that resumes exactly (it redoes an epoch whose other files were
    written ahead of it)."""
    out = Path(out)
    if best:
        save(out / BEST, model, metadata)
    save(out / LAST, model, metadata)
    with atomic_path(out / HISTORY) as partial:
        partial.write_text(json.dumps(history, indent=1))
    if state is not None:
        tensors, settings = state
        with atomic_path(out / STATE) as partial:
            save_file(tensors, str(partial), metadata={STATE_KEY: json.dumps(settings)})


def read_run_state(out: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and settings of a run folder's state (see :func:`write_run`)."""
    path = Path(out) / STATE
    try:
        with safe_open(str(path), framework="pt") as file:
            raw = (file.metadata() or {}).get(STATE_KEY)
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"cannot resume from {str(path)!r} ({error}); train into a new --output") from error
    if raw is None:
        raise CheckpointError(f"{str(path)!r} was written by an older xrdzoo and cannot be resumed exactly; "
                              "train into a new --output")
    return tensors, json.loads(raw)
