"""Checkpoints: a model's tensors in safetensors and everything else as JSON metadata, and the run folders training
writes (best, last, history, the state to resume from). Nothing is unpickled. A fitted predictor keeps numpy arrays
(``xrdzoo.arrays.Arrays``) and is saved and loaded without importing torch; networks are torch modules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError, safe_open

from xrdzoo.arrays import Arrays
from xrdzoo.builder import from_config
from xrdzoo.contracts import FittedBackbone, FittedPredictor
from xrdzoo.errors import InputError
from xrdzoo.files import atomic_path
from xrdzoo.registry import PluginError
from xrdzoo.version import __version__

if TYPE_CHECKING:
    import torch

    from xrdzoo.model import XRDModel

FORMAT = "xrdzoo-checkpoint/1"
# A run folder: the best and last checkpoints, the history as JSON, and the state a run resumes from (tensors whose
# names its trainer chooses, with its settings as JSON metadata under STATE_KEY).
BEST, LAST, STATE, HISTORY = "best.safetensors", "last.safetensors", "train_state.safetensors", "history.json"
STATE_KEY = "xrdzoo-train"
METADATA_KEY = "xrdzoo"
DIGEST_KEY = "tensors_sha256"  # in the metadata: sha256 of every tensor's name, dtype, shape and bytes (see digest)
SETTINGS_KEY = "model_sha256"  # in the metadata: sha256 of the model config (see settings_digest)
# What a model config holds, by kind: the keys read_model needs and their JSON types.
SCHEMA = {"predictor": {"predictor": str, "options": dict},
          "network": {"encoder": str, "encoder_options": dict, "backbone": str, "backbone_options": dict}}


class CheckpointError(InputError):
    """A file that is not a usable xrdzoo checkpoint."""


def save(path: str | Path, model: XRDModel, metadata: dict[str, Any] | None = None, dtype: str | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (a crash mid-write leaves the old file intact).

    ``metadata`` (JSON-able: training settings, data hash and split, metrics) is stored beside the model config;
    ``dtype`` (``"float16"``, or ``"bfloat16"`` for a network) stores float32 tensors in a smaller type (float64
    ones, such as template lattices, are kept exact).
    """
    path = Path(path)
    state = model.state_dict()
    if isinstance(model, Arrays):
        from safetensors.numpy import save_file

        if dtype == "bfloat16":
            raise InputError("a fitted predictor's arrays are numpy, which has no bfloat16: store them as float16")
        tensors = {name: np.ascontiguousarray(array.astype(dtype) if dtype and array.dtype == np.float32 else array)
                   for name, array in state.items()}
    else:
        import torch
        from safetensors.torch import save_file

        tensors = {}
        for name, tensor in state.items():
            tensor = tensor.detach().cpu().contiguous()
            tensors[name] = tensor.to(getattr(torch, dtype)) if dtype and tensor.dtype == torch.float32 else tensor
    meta = {"format": FORMAT, "xrdzoo_version": __version__, "model": model.config, **(metadata or {}),
            DIGEST_KEY: digest(tensors), SETTINGS_KEY: settings_digest(model.config)}
    with atomic_path(path) as partial:
        save_file(tensors, str(partial), metadata={METADATA_KEY: json.dumps(meta)})
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without reading its tensors: checked against :data:`SCHEMA` and, where the
    file has one, against its settings digest."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; give a .safetensors path or a weight name")
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as error:
        raise _unreadable(path, error) from None
    if raw is None:
        raise CheckpointError(f"{str(path)!r} has no xrdzoo metadata; save checkpoints with xrdzoo.checkpoint.save")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{str(path)!r} has damaged metadata ({error}); re-download or re-save it") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{str(path)!r} has format {found!r}; this xrdzoo reads {FORMAT!r}")
    _check_schema(path, meta)
    if SETTINGS_KEY in meta and settings_digest(meta["model"]) != meta[SETTINGS_KEY]:
        raise CheckpointError(f"{str(path)!r} is damaged: its model settings do not match the digest saved with them "
                              "(edited by hand?); re-download or re-save it")
    return meta


def _unreadable(path: Path, error: Exception) -> CheckpointError:
    return CheckpointError(f"{str(path)!r} is not a readable safetensors file ({error}); re-download or re-save it")


def _check_schema(path: Path, meta: dict) -> None:
    """A one-line error for metadata that lacks a section read_model needs or holds one of the wrong type."""
    config = meta.get("model")
    wanted = {"model": (config, dict), DIGEST_KEY: (meta.get(DIGEST_KEY, ""), str),
              SETTINGS_KEY: (meta.get(SETTINGS_KEY, ""), str)}
    if isinstance(config, dict):
        kind = "predictor" if "predictor" in config else "network"
        wanted |= {f"model.{key}": (config.get(key), kind_of) for key, kind_of in SCHEMA[kind].items()}
        wanted["model.packages"] = (config.get("packages", {}), dict)
    for key, (value, expected) in wanted.items():
        if not isinstance(value, expected):
            problem = "lacks" if value is None else f"has a {type(value).__name__} for"
            raise CheckpointError(f"{str(path)!r} {problem} its metadata's {key!r} (a {expected.__name__}); it was "
                                  "not written by xrdzoo.checkpoint.save or was edited: re-download or re-save it")


def read_model(path: str | Path) -> XRDModel:
    """Rebuild a model from a checkpoint's metadata alone and load its tensors (at the model's precision, strict
    checks): a fitted predictor's as numpy arrays, without torch (:class:`~xrdzoo.arrays.Arrays`), a network's as
    torch tensors.

    A network's config is first built on PyTorch's ``meta`` device (shapes without memory) and checked against the
    tensor shapes in the file's header, so a config that asks for more than the file holds is refused before
    anything of its size is allocated."""
    meta = read_metadata(path)
    if "predictor" in meta["model"]:
        member = _build(path, meta["model"])
        if isinstance(member, Arrays):
            return _read_arrays(path, meta, member)
    import torch
    from safetensors.torch import load_file

    try:
        with torch.device("meta"):
            model = _build(path, meta["model"])
            _check_shapes(path, {name: tuple(t.shape) for name, t in model.state_dict().items()}, _shapes(path),
                          set(dict(model.named_buffers())) if _fitted(model) else set(),
                          set(getattr(model, "added_later", ())))
    except (SafetensorError, OSError) as error:
        raise _unreadable(path, error) from None
    model = _build(path, meta["model"])
    expected = model.state_dict()
    tensors = _read(path, load_file, meta)
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            tensors[name] = tensor.to(expected[name].dtype)
    model.load_state_dict(tensors)
    model.metadata = meta
    return model


def _read_arrays(path: Path, meta: dict, member: Arrays) -> Arrays:
    """A fitted predictor's arrays loaded into ``member`` (see :func:`read_model`)."""
    from safetensors.numpy import load_file

    expected = {name: array.shape for name, array in member.state_dict().items()}
    fixed = member.fixed_shapes()
    _check_shapes(path, expected, _shapes(path), expected.keys() - fixed.keys(), set(member.added_later))
    member.load_state_dict(_read(path, load_file, meta))
    member.metadata = meta
    return member


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor shapes in a safetensors file's header."""
    try:
        with safe_open(str(path), framework="numpy") as file:
            return {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
    except (SafetensorError, OSError) as error:
        raise _unreadable(path, error) from None


def _read(path: Path, load_file, meta: dict) -> dict:
    """The tensors of a checkpoint read by ``load_file`` (safetensors' numpy or torch one), checked against the
    digest saved with them where there is one."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise _unreadable(path, error) from None
    if DIGEST_KEY in meta and digest(tensors) != meta[DIGEST_KEY]:
        raise CheckpointError(f"{str(path)!r} is damaged: its tensors do not match the digest saved with them; "
                              "re-download or re-save it")
    return tensors


def _build(path: Path, config: dict) -> XRDModel:
    """The unloaded member a config describes; a missing plugin names the packages the file was made with."""
    try:
        return from_config(config)
    except PluginError as error:
        made_with = ", ".join(sorted(set(map(str, config.get("packages", {}).values()))))
        raise PluginError(f"{str(path)!r} needs a plugin that is not usable here ({error}); it was made with "
                          f"{made_with}: install those packages") from error


def _check_shapes(path: Path, expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]],
                  resizable: set[str], optional: set[str]) -> None:
    """A one-line error unless the file holds exactly the model's tensors (those ``optional`` may be absent), each
    of its ``expected`` shape (``resizable`` ones, sized by a fitted member's data, take any)."""
    missing = sorted(expected.keys() - shapes.keys() - optional)
    unexpected = sorted(shapes.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(f"{str(path)!r} does not match its config: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]} tensors")
    for name, shape in shapes.items():
        if shape != tuple(expected[name]) and name not in resizable:
            raise CheckpointError(f"{str(path)!r}: tensor {name!r} has shape {shape}, "
                                  f"the config gives {tuple(expected[name])}")


def digest(tensors: dict) -> str:
    """sha256 (hex) of tensors' names, dtypes, shapes and bytes, in name order; a numpy array digests as the torch
    tensor of the same values (``torch.float32``). ``load`` checks it where the file has one; files saved without
    (older checkpoints, the shipped weights, which the hub checks by sha256) load without this check."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        kind, shape, data = _raw(tensors[name])
        hasher.update(f"{name}:{kind}:{shape}\n".encode())
        hasher.update(data)
    return hasher.hexdigest()


def _raw(tensor) -> tuple[str, tuple[int, ...], bytes]:
    """A numpy array's or torch tensor's (dtype as torch names it, shape, bytes)."""
    if isinstance(tensor, np.ndarray):
        return f"torch.{tensor.dtype.name}", tuple(tensor.shape), np.ascontiguousarray(tensor).tobytes()
    import torch

    tensor = tensor.detach().cpu().contiguous()
    return str(tensor.dtype), tuple(tensor.shape), tensor.reshape(-1).view(torch.uint8).numpy().tobytes()


def settings_digest(config: dict) -> str:
    """sha256 (hex) of a model config as canonical JSON: everything besides the tensors that decides predictions
    (encoder vocabulary, backbone and predictor options). ``load`` checks it where the file has one."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _fitted(model: XRDModel) -> bool:
    """Whether a torch model is fitted on data (a plugin's torch predictor, the knn baseline), so that its buffers
    take whatever size the checkpoint holds."""
    return isinstance(model, FittedPredictor) or isinstance(getattr(model, "backbone", None), FittedBackbone)


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
        from safetensors.torch import save_file

        tensors, settings = state
        with atomic_path(out / STATE) as partial:
            save_file(tensors, str(partial), metadata={STATE_KEY: json.dumps(settings)})


def read_run_state(out: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and settings of a run folder's state (see :func:`write_run`)."""
    from safetensors.torch import load_file

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
