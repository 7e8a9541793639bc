"""Training: Adam with early stopping on the validation split, resumable checkpoints, one or several processes.

Several processes use PyTorch's own distributed engine: ``torchrun --nproc_per_node=2 -m xrdzoo train ...``
(gloo on CPU, NCCL on GPUs). Each process takes its share of every batch; process 0 validates and writes.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from xrdzoo import checkpoint, registry
from xrdzoo.data import Dataset, load_dataset
from xrdzoo.model import XRDModel, autocast, check_precision, create_model, create_predictor

BEST, LAST, STATE = "best.safetensors", "last.safetensors", "train_state.safetensors"
RNG, SHUFFLE_RNG = "rng.torch", "rng.shuffle"  # random states saved with the optimizer so a resume is exact


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in every checkpoint it writes."""

    data: str
    output: str = "runs/default"
    encoder: str = "onehot"
    backbone: str = "resnet20"
    loss: str = "pearson"
    epochs: int = 50
    lr: float = 1e-3
    batch_size: int = 64
    dropout: float | None = None
    seed: int = 0
    patience: int = 10
    encoder_options: dict[str, Any] = field(default_factory=dict)
    backbone_options: dict[str, Any] = field(default_factory=dict)
    loss_options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    precision: str = "float32"
    predictor: str | None = None  # a registered predictor (retrieval, template ...) instead of encoder + backbone
    predictor_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_precision(self.precision)


RUNTIME_SETTINGS = ("epochs", "output", "device", "precision")  # what a resumed run may change


def encode_split(model: XRDModel, data: Dataset) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Encoded inputs and targets (patterns / 100) of every formula the encoder can take, and those it cannot."""
    keep, errors = model.encodable(data.formulas)
    inputs = model.encoder.encode([data.formulas[i] for i in keep])
    return inputs, torch.from_numpy(data.patterns[keep] / 100.0).float(), list(errors)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank() if world > 1 else 0), world


def _sync_gradients(model: torch.nn.Module, world: int) -> None:
    """Average gradients over processes (what DistributedDataParallel does, without its bucketing)."""
    if world > 1:
        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam's state as flat tensors for safetensors, plus its JSON-able hyper-parameters."""
    state = optimizer.state_dict()
    tensors = {f"{idx}.{key}": torch.as_tensor(value).contiguous()
               for idx, slots in state["state"].items() for key, value in slots.items()}
    return tensors, {"param_groups": state["param_groups"]}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: dict) -> None:
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        idx, key = name.split(".", 1)
        slots.setdefault(int(idx), {})[key] = tensor
    optimizer.load_state_dict({"state": slots, **groups})


def _evaluate_loss(model: XRDModel, loss_fn, inputs, targets, batch_size: int) -> tuple[float, float]:
    """Mean validation loss and mean Pearson r over the whole split."""
    model.eval()
    losses, preds = [], []
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            pred = model(inputs[i : i + batch_size])
            losses.append(float(loss_fn(pred, targets[i : i + batch_size])) * len(pred))
            preds.append(pred)
    pred = torch.cat(preds)
    p, t = pred - pred.mean(1, keepdim=True), targets - targets.mean(1, keepdim=True)
    r = (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1)).clamp(min=1e-12)
    return sum(losses) / len(inputs), float(r.mean())


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a model as ``config`` says and return the path of its best checkpoint.

    The output folder gets ``best.safetensors`` (lowest validation loss), ``last.safetensors`` and
    ``train_state.safetensors`` (optimizer and progress, for ``resume``), and ``history.json``. Ctrl-C saves the
    last state before stopping.
    """
    rank, world = _distributed(config.device)
    out = Path(config.output)
    if resume:
        saved = checkpoint.read_metadata(out / LAST)["train"]
        config = TrainConfig(**{**saved["config"], **{key: getattr(config, key) for key in RUNTIME_SETTINGS}})
    _seed_everything(config.seed)
    data = load_dataset(config.data)
    if config.predictor is not None:
        return _fit_predictor(config, data, out, progress)
    backbone_options = dict(config.backbone_options)
    if config.dropout is not None:
        backbone_options["dropout"] = config.dropout
    model = create_model(config.encoder, config.backbone, encoder_options=config.encoder_options,
                         **backbone_options).to(config.device)
    loss_fn = registry.create("losses", config.loss, **config.loss_options)
    x_train, y_train, skipped = encode_split(model, data.select("train"))
    x_val, y_val, skipped_val = encode_split(model, data.select("val"))
    x_train, y_train, x_val, y_val = (t.to(config.device) for t in (x_train, y_train, x_val, y_val))
    meta = {"data": {"path": str(config.data), "hash": data.hash, "settings": data.settings,
                     "split_sizes": {"train": len(x_train), "val": len(x_val)},
                     "unencodable": len(skipped) + len(skipped_val)}}
    if rank == 0 and (skipped or skipped_val):
        print(f"{len(skipped) + len(skipped_val)} formulas the {config.encoder} encoder cannot take were left out, "
              f"e.g. {(skipped + skipped_val)[:3]}")

    if hasattr(model.backbone, "fit"):  # baselines (mean, knn) are fitted, not trained
        model.backbone.fit(x_train, y_train)
        val_loss, val_r = _evaluate_loss(model, loss_fn, x_val, y_val, config.batch_size)
        history = [{"epoch": 1, "train_loss": None, "val_loss": val_loss, "val_pearson_r": val_r}]
        if rank == 0:
            _write(out, model, config, meta, history, best=True)
        return out / BEST

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    if resume:
        model.load_state_dict(_load_tensors(out / LAST))
        state = _load_tensors(out / STATE)
        torch.set_rng_state(state.pop(RNG))
        generator.set_state(state.pop(SHUFFLE_RNG))
        _restore_optimizer(optimizer, state, saved["optimizer"])
        history = saved["history"]
    best = min((h["val_loss"] for h in history), default=float("inf"))
    since_best = len(history) - 1 - min(range(len(history)), key=lambda i: history[i]["val_loss"]) if history else 0

    epoch = len(history)
    try:
        for epoch in range(len(history) + 1, config.epochs + 1):
            model.train()
            order = torch.randperm(len(x_train), generator=generator)
            batches = range(0, len(order) - world + 1, config.batch_size)  # every process gets a sample
            bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress or rank != 0,
                       leave=False, unit="batch")
            total = 0.0
            for start in bar:
                idx = order[start : start + config.batch_size][rank::world]
                with autocast(torch.device(config.device).type, config.precision):
                    pred = model(x_train[idx])
                loss = loss_fn(pred.float(), y_train[idx])
                optimizer.zero_grad()
                loss.backward()
                _sync_gradients(model, world)
                optimizer.step()
                total += loss.item() * len(idx)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            val_loss, val_r = _evaluate_loss(model, loss_fn, x_val, y_val, 256)
            history.append({"epoch": epoch, "train_loss": total / len(x_train) * world, "val_loss": val_loss,
                            "val_pearson_r": val_r})
            improved = val_loss < best
            best, since_best = (val_loss, 0) if improved else (best, since_best + 1)
            if rank == 0:
                print(f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f}  val loss {val_loss:.4f}  "
                      f"val pearson r {val_r:.4f}" + ("  (best)" if improved else ""), flush=True)
                _write(out, model, config, meta, history, best=improved, optimizer=optimizer, generator=generator)
            if since_best >= config.patience:
                if rank == 0:
                    print(f"early stop: no better validation loss in {config.patience} epochs")
                break
    except KeyboardInterrupt:
        if rank == 0:
            print(f"\ninterrupted in epoch {epoch}; the last finished epoch is saved. "
                  f"Continue with: xrdzoo train --resume --output {out}")
        raise
    return out / BEST


def _fit_predictor(config: TrainConfig, data: Dataset, out: Path, progress: bool) -> Path:
    """Fit a predictor on the training split, score it on the validation split, and write it as the run's best."""
    from xrdzoo.evaluate import evaluate_model

    model = create_predictor(config.predictor, **config.predictor_options)
    train_rows, val_rows = data.select("train"), data.select("val")
    report = model.fit(train_rows, val_rows, progress=progress)
    scores = evaluate_model(model, data, "val")
    print(f"{config.predictor}: validation peak F1 {scores['peak_f1']:.4f} on {scores['n']} formulas", flush=True)
    meta = {"data": {"path": str(config.data), "hash": data.hash, "settings": data.settings,
                     "split_sizes": {"train": len(train_rows), "val": len(val_rows)}, "unencodable": 0},
            "fit": report}
    history = [{"epoch": 1, "train_loss": None, "val_loss": None, "val_peak_f1": scores["peak_f1"]}]
    _write(out, model, config, meta, history, best=True)
    return out / BEST


def _write(out: Path, model: XRDModel, config: TrainConfig, meta: dict, history: list[dict], best: bool,
           optimizer: torch.optim.Optimizer | None = None, generator: torch.Generator | None = None) -> None:
    """Save last (and best) checkpoints, the optimizer state and the history; every file is replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    train_meta = {"config": asdict(config), "history": history, "epoch": len(history)}
    if optimizer is not None:
        tensors, groups = _optimizer_tensors(optimizer)
        tensors[RNG], tensors[SHUFFLE_RNG] = torch.get_rng_state(), generator.get_state()
        save_file(tensors, str(out / (STATE + ".partial")))
        os.replace(out / (STATE + ".partial"), out / STATE)
        train_meta["optimizer"] = groups
    metadata = {**meta, "train": train_meta, "metrics": {"val": history[-1]}}
    checkpoint.save(out / LAST, model, metadata)
    if best:
        checkpoint.save(out / BEST, model, metadata)
    (out / "history.json").write_text(json.dumps(history, indent=1))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))
