"""Speed of models against the machine's limit: inference formulas/s, training samples/s, FLOPs, memory, accuracy.

    python benchmarks/speed.py --checkpoint resnet20_onehot.mp_abc3 --checkpoint resnet20w32_onehot.mp_abc3 \
        --data data/mp_abc3.npz

Each configuration (model x batch size x float32 / bfloat16 autocast x inference / training) runs in a fresh
process, so its peak memory is its own. Inference is end to end: formula strings in, normalised patterns
out, encoding included. With ``--data`` each checkpoint's peak F1 on the test split is measured in both precisions,
and the page names the fastest configuration whose peak F1 is within 0.005 of the first checkpoint's in float32.
Without ``--checkpoint`` an untrained resnet20 + onehot is timed.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from xrdzoo.model import PRECISIONS, autocast

BATCHES = (64, 256)
F1_TOLERANCE = 0.005  # how much test peak F1 a faster configuration may lose against the reference


def gemm_flops(dtype: torch.dtype, device: str, repeats: int = 20) -> float:
    """The machine's practical ceiling for dense work: best of three timings of a square matrix product.

    The product runs as a 1x1 convolution over a channels-last map, so it goes through the same library as the
    model's convolutions (oneDNN on a CPU, cuDNN on a GPU); torch.matmul's MKL on an AMD CPU is slower.
    """
    size = 8192 if device.startswith("cuda") else 2048  # a GPU needs large products to reach its peak
    image = torch.randn(1, size, 1, size, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(size, size, 1, 1, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    for _ in range(4):  # the first round warms up (thread pools, clocks, kernels)
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.conv2d(image, weight)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def model_flops(model) -> int:
    """Forward FLOPs of one formula (PyTorch's FLOP counter: convolutions and matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(model.encoder.encode(["BaTiO3"]))
    return counter.get_total_flops()


def load_model(checkpoint: str | None):
    """The checkpoint's model, or an untrained resnet20 + onehot when there is none."""
    import xrdzoo

    torch.manual_seed(0)
    return xrdzoo.load(checkpoint) if checkpoint else xrdzoo.create_model("onehot", "resnet20")


def measure(checkpoint: str | None, task: str, batch: int, precision: str, seconds: float, device: str) -> dict:
    """One configuration, in this process: items per second over about ``seconds`` of steady work."""
    from xrdzoo.data import load_dataset  # noqa: F401  (the same imports a user's process has)

    model = load_model(checkpoint).to(device)
    formulas = ["BaTiO3", "SrTiO3", "NaCl", "MgAl2O4", "YAlO3", "CsInBr3", "Ca3SiO", "Co3Bi3N5"] * (batch // 8)
    if task == "inference":
        step = lambda: model.predict(formulas, batch_size=batch, precision=precision)  # noqa: E731
    else:
        model.train()
        inputs, targets = model.encoder.encode(formulas).to(device), torch.rand(batch, 1024, device=device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        from xrdzoo.losses import PearsonLoss

        loss_fn = PearsonLoss()

        def step():
            with autocast(torch.device(device).type, precision):
                loss = loss_fn(model(inputs).float(), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    step()  # warm-up
    _sync(device)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += batch
        _sync(device)
    rate = done / (time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else peak_rss()
    return {"model": checkpoint or "resnet20 (untrained)", "task": task, "batch": batch, "precision": precision,
            "items/s": rate, "peak MiB": memory / 2**20}


def peak_rss() -> int:
    """This process's peak resident memory in bytes. Linux's VmHWM counts this program alone; ru_maxrss would
    also count the parent's memory at the time it started this process."""
    status = Path("/proc/self/status")
    if status.exists():
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read_text()).group(1)) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS


def peak_f1(model, data_path: str) -> dict:
    """Test-split peak F1 of a model in each precision (formulas its encoder cannot take are left out)."""
    import numpy as np

    from xrdzoo.data import load_dataset
    from xrdzoo.metrics import peak_f1 as f1

    test = load_dataset(data_path).select("test")
    answers = {p: model.answer(test.formulas, precision=p) for p in PRECISIONS}
    return {p: float(np.mean(f1(a.patterns.intensities, test.patterns[a.kept]))) for p, a in answers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="steady-state time per configuration")
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="weights to time (repeatable; the first is the accuracy reference)")
    parser.add_argument("--data", help="dataset whose test split scores each checkpoint")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with a GPU")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: CHECKPOINT,TASK,BATCH,PRECISION, fresh process
    args = parser.parse_args()
    if args.one:
        checkpoint, task, batch, precision = args.one.split(",")
        print(json.dumps(measure(checkpoint or None, task, int(batch), precision, args.seconds, args.device)))
        return

    from common import markdown_table, write_results

    rows, flops, accuracy = [], {}, {}
    for checkpoint in args.checkpoint or [""]:
        for task in ("inference", "training"):
            for batch in BATCHES:
                for precision in PRECISIONS:
                    command = [sys.executable, __file__, "--one", f"{checkpoint},{task},{batch},{precision}",
                               "--seconds", str(args.seconds), "--device", args.device]
                    out = subprocess.run(command, capture_output=True, text=True, check=True)
                    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(rows[-1], flush=True)
        model = load_model(checkpoint or None).eval()
        flops[rows[-1]["model"]] = model_flops(model)
        if checkpoint and args.data:
            accuracy[checkpoint] = peak_f1(model, args.data)
    ceiling = {p: gemm_flops(getattr(torch, p), args.device) for p in PRECISIONS}
    for row in rows:
        per_item = flops[row["model"]] * (1 if row["task"] == "inference" else 3)  # backward: about twice forward
        row["GFLOP/s"] = row["items/s"] * per_item / 1e9
        row["share of GEMM peak"] = row["GFLOP/s"] * 1e9 / ceiling[row["precision"]]
        if row["task"] == "inference" and row["model"] in accuracy:
            row["test peak F1"] = accuracy[row["model"]][row["precision"]]

    where = "CPU" if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    memory = "the process's peak resident memory" if args.device == "cpu" else "the largest GPU memory allocated"
    costs = ", ".join(f"`{name}` {value / 1e9:.3f}" for name, value in flops.items())
    lines = [f"## Speed ({where})\n\nForward cost in GFLOP per formula: {costs} (training counted as 3x). Measured "
             f"GEMM ceiling (a square product run as a 1x1 convolution, through the convolutions' own library): "
             f"{ceiling['float32'] / 1e9:.0f} GFLOP/s float32, {ceiling['bfloat16'] / 1e9:.0f} "
             f"GFLOP/s bfloat16 ({torch.get_num_threads()} CPU threads). Inference is end to end (formula strings to "
             f"normalised patterns); peak MiB is {memory}."
             + (f" Test peak F1 is on the test split of `{args.data}`." if accuracy else ""),
             markdown_table(rows, ["model", "task", "batch", "precision", "items/s", "GFLOP/s",
                                   "share of GEMM peak", "peak MiB", "test peak F1"])]
    inference = [r for r in rows if r["task"] == "inference"]
    fastest = max(inference, key=lambda r: r["items/s"])
    lines.append(f"Fastest inference: {_config(fastest)}.")
    if accuracy:
        reference = args.checkpoint[0]
        floor = accuracy[reference]["float32"] - F1_TOLERANCE
        within = max((r for r in inference if r.get("test peak F1", -1.0) >= floor), key=lambda r: r["items/s"])
        lines[-1] += (f" Fastest within {F1_TOLERANCE} test peak F1 of `{reference}` in float32 "
                      f"({accuracy[reference]['float32']:.4f}): {_config(within)}, peak F1 "
                      f"{within['test peak F1'] - accuracy[reference]['float32']:+.4f}.")
    name = "speed" if args.device == "cpu" else "speed_" + torch.device(args.device).type
    write_results(name, {"device": where, "forward_flops": flops, "gemm_flops": ceiling, "rows": rows,
                         "peak_f1": accuracy}, "\n\n".join(lines))


def _config(row: dict) -> str:
    return f"{row['items/s']:.0f} formulas/s (`{row['model']}`, {row['precision']}, batch {row['batch']})"


if __name__ == "__main__":
    main()
