"""Training: Adam with early stopping on the validation split, resumable checkpoints, one or several processes.

Several processes use PyTorch's own distributed engine: ``torchrun --nproc_per_node=2 -m xrdzoo train ...``
(gloo on CPU, NCCL on GPUs). Each process takes its share of every batch; process 0 validates and writes.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from xrdzoo import checkpoint, registry
from xrdzoo.data import Dataset, load_dataset
from xrdzoo.contracts import FittedBackbone
from xrdzoo.errors import InputError, at_least_one
from xrdzoo.losses import pearson_distance
from xrdzoo.builder import create_model, create_predictor
from xrdzoo.model import XRDModel, autocast, check_precision
from xrdzoo.xrd.pattern import FULL_SCALE

# The state file holds one finished epoch whole: the model, Adam's state and the random states (tensors, by these
# prefixes and names) and the run's settings and history (JSON metadata), so a resume from it is exact.
MODEL, OPTIMIZER, RNG, SHUFFLE_RNG = "model.", "optimizer.", "rng.torch", "rng.shuffle"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what schedulers and containers send


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after saving; ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


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
        at_least_one(self.epochs, "epochs")
        at_least_one(self.batch_size, "batch_size")


RUNTIME_SETTINGS = ("data", "epochs", "output", "device", "precision")  # what a resumed run may change (data:
# its path only; the content must be the same)


def _encode_split(model: XRDModel, data: Dataset) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Encoded inputs and targets (patterns / 100) of every formula the encoder can take, and those it cannot."""
    inputs, keep, errors = model.encode(data.formulas)
    return inputs, torch.from_numpy(data.patterns[keep] / FULL_SCALE).float(), list(errors)


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
    tensors = {f"{OPTIMIZER}{idx}.{key}": torch.as_tensor(value).contiguous()
               for idx, slots in state["state"].items() for key, value in slots.items()}
    return tensors, {"param_groups": state["param_groups"]}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: dict) -> None:
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        idx, key = name.removeprefix(OPTIMIZER).split(".", 1)
        slots.setdefault(int(idx), {})[key] = tensor
    optimizer.load_state_dict({"state": slots, **groups})


class _StopSignals:
    """SIGINT and SIGTERM raise :class:`TrainingInterrupted`, but never while files are being written: a signal
    then waits for the write to finish. SIGINT is handled even where it arrived ignored (a background job)."""

    def __init__(self):
        self.received: int | None = None
        self.writing = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self.previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        self.received = signum
        if not self.writing:
            raise TrainingInterrupted(signum)

    @contextmanager
    def deferred(self):
        """Hold a signal until the block has finished."""
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
        if self.received is not None:
            raise TrainingInterrupted(self.received)


def _evaluate_loss(model: XRDModel, loss_fn, inputs, targets, batch_size: int) -> tuple[float, float]:
    """Mean validation loss and mean Pearson r over the whole split."""
    model.eval()
    losses, preds = [], []
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            pred = model(inputs[i : i + batch_size])
            losses.append(float(loss_fn(pred, targets[i : i + batch_size])) * len(pred))
            preds.append(pred)
    r = 1 - pearson_distance(torch.cat(preds), targets)
    return sum(losses) / len(inputs), float(r.mean())


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a model as ``config`` says and return the path of its best checkpoint.

    The output folder gets ``best.safetensors`` (lowest validation loss), ``last.safetensors``,
    ``train_state.safetensors`` (the last epoch's model, optimizer and progress in one file, for ``resume``) and
    ``history.json``. SIGINT (Ctrl-C) and SIGTERM stop it at once with the last finished epoch saved, print the
    command that continues, and raise :class:`TrainingInterrupted`. ``resume`` refuses a dataset of other content.
    """
    with _StopSignals() as signals:
        try:
            return _train(config, resume, progress, signals)
        except TrainingInterrupted as stop:
            if _distributed(config.device)[0] == 0:
                saved = (Path(config.output) / checkpoint.STATE).is_file()
                print(f"\nstopped by {stop}; " + (
                      "the last finished epoch is saved. Continue with: xrdzoo train --resume --data "
                      f"{config.data} --output {config.output}" if saved else "no epoch had finished, nothing saved"),
                      flush=True)
            raise


def _train(config: TrainConfig, resume: bool, progress: bool, signals: _StopSignals) -> Path:
    """The steps of a run: read what a resumed run saved, load the data, fit a predictor or baseline or train a
    network epoch by epoch, writing after each."""
    rank, world = _distributed(config.device)
    out = Path(config.output)
    config, data, state, saved = _open_run(config, out, resume)
    if config.predictor is not None:
        return _fit_predictor(config, data, out, progress)
    model, loss_fn = _build(config)
    (x_train, y_train), (x_val, y_val), meta = _encoded_splits(model, data, config, rank)
    if isinstance(model.backbone, FittedBackbone):  # baselines (mean, knn) are fitted, not trained
        model.backbone.fit(x_train, y_train)
        val_loss, val_r = _evaluate_loss(model, loss_fn, x_val, y_val, config.batch_size)
        history = [{"epoch": 1, "train_loss": None, "val_loss": val_loss, "val_pearson_r": val_r}]
        if rank == 0:
            _write(out, model, config, meta, history, best=True)
        return out / checkpoint.BEST

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    history = _restore(model, optimizer, generator, state, saved) if resume else []
    best = min((h["val_loss"] for h in history), default=float("inf"))
    since_best = len(history) - 1 - min(range(len(history)), key=lambda i: history[i]["val_loss"]) if history else 0
    for epoch in range(len(history) + 1, config.epochs + 1):
        train_loss = _train_epoch(model, loss_fn, optimizer, generator, x_train, y_train, config, epoch,
                                  progress and rank == 0, world, rank)
        val_loss, val_r = _evaluate_loss(model, loss_fn, x_val, y_val, 256)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_pearson_r": val_r})
        improved = val_loss < best
        best, since_best = (val_loss, 0) if improved else (best, since_best + 1)
        if rank == 0:
            print(f"epoch {epoch}: train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
                  f"val pearson r {val_r:.4f}" + ("  (best)" if improved else ""), flush=True)
            with signals.deferred():
                _write(out, model, config, meta, history, best=improved, optimizer=optimizer, generator=generator)
        if since_best >= config.patience:
            if rank == 0:
                print(f"early stop: no better validation loss in {config.patience} epochs")
            break
    return out / checkpoint.BEST


def _open_run(config: TrainConfig, out: Path, resume: bool):
    """(config, dataset, saved tensors, saved settings): a resumed run's own config with the runtime settings given
    now, its state, and the data checked against the data it was trained on; the random generators seeded."""
    state, saved = checkpoint.read_run_state(out) if resume else ({}, {})
    if resume:
        config = TrainConfig(**{**saved["config"], **{key: getattr(config, key) for key in RUNTIME_SETTINGS}})
    _seed_everything(config.seed)
    data = load_dataset(config.data)
    if resume and data.hash != saved["data_hash"]:
        raise InputError(f"--data {config.data} is not the dataset the run in {out} was trained on (content hash "
                         f"{data.hash[:16]}, the run's {saved['data_hash'][:16]}); resume with that dataset, or "
                         "train into a new --output")
    return config, data, state, saved


def _build(config: TrainConfig):
    """The network and the loss the config names, on its device."""
    backbone_options = dict(config.backbone_options)
    if config.dropout is not None:
        backbone_options["dropout"] = config.dropout
    model = create_model(config.encoder, config.backbone, encoder_options=config.encoder_options,
                         **backbone_options).to(config.device)
    return model, registry.create("losses", config.loss, **config.loss_options)


def _encoded_splits(model: XRDModel, data: Dataset, config: TrainConfig, rank: int):
    """The encoded training and validation splits on the device, and the data's description for the checkpoints;
    says how many formulas the encoder left out."""
    x_train, y_train, skipped = _encode_split(model, data.select("train").ground_states())  # one per formula
    x_val, y_val, skipped_val = _encode_split(model, data.select("val").ground_states())
    x_train, y_train, x_val, y_val = (t.to(config.device) for t in (x_train, y_train, x_val, y_val))
    meta = {"data": {"path": str(config.data), "hash": data.hash, "settings": data.settings,
                     "split_sizes": {"train": len(x_train), "val": len(x_val)},
                     "unencodable": len(skipped) + len(skipped_val)}}
    if rank == 0 and (skipped or skipped_val):
        print(f"{len(skipped) + len(skipped_val)} formulas the {config.encoder} encoder cannot take were left out, "
              f"e.g. {(skipped + skipped_val)[:3]}")
    return (x_train, y_train), (x_val, y_val), meta


def _restore(model: XRDModel, optimizer, generator: torch.Generator, state: dict, saved: dict) -> list[dict]:
    """Put a resumed run's model, Adam and random states back; returns its history."""
    model.load_state_dict({k.removeprefix(MODEL): v for k, v in state.items() if k.startswith(MODEL)})
    torch.set_rng_state(state[RNG])
    generator.set_state(state[SHUFFLE_RNG])
    _restore_optimizer(optimizer, {k: v for k, v in state.items() if k.startswith(OPTIMIZER)}, saved["optimizer"])
    return saved["history"]


def _train_epoch(model: XRDModel, loss_fn, optimizer, generator: torch.Generator, x_train, y_train,
                 config: TrainConfig, epoch: int, progress: bool, world: int, rank: int) -> float:
    """One pass over the training split in shuffled batches (process ``rank`` of ``world`` takes its share); the
    mean loss."""
    model.train()
    order = torch.randperm(len(x_train), generator=generator)
    batches = range(0, len(order) - world + 1, config.batch_size)  # every process gets a sample
    bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False, unit="batch")
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
    return total / len(x_train) * world


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
    return out / checkpoint.BEST


def _write(out: Path, model: XRDModel, config: TrainConfig, meta: dict, history: list[dict], best: bool,
           optimizer: torch.optim.Optimizer | None = None, generator: torch.Generator | None = None) -> None:
    """Write the run folder (``checkpoint.write_run``): checkpoints with the run's settings and history, and for a
    trained network its state (model, Adam, random states) to resume from."""
    train_meta = {"config": asdict(config), "history": history, "epoch": len(history)}
    state = None
    if optimizer is not None:
        tensors, groups = _optimizer_tensors(optimizer)
        tensors.update({MODEL + k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
        tensors[RNG], tensors[SHUFFLE_RNG] = torch.get_rng_state(), generator.get_state()
        state = tensors, {**train_meta, "optimizer": groups, "data_hash": meta["data"]["hash"]}
    checkpoint.write_run(out, model, {**meta, "train": train_meta, "metrics": {"val": history[-1]}}, history,
                         best, state)
