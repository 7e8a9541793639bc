"""Speed of resnet20 + onehot against the machine's limit: inference formulas/s, training samples/s, FLOPs, memory.

    python benchmarks/speed.py --checkpoint resnet20_onehot.mp_abc3 --data data/mp_abc3.npz

Each configuration (batch size x float32 / bfloat16 autocast x inference / training) runs in a fresh process, so
its peak memory (max RSS) is its own. Inference is end to end: formula strings in, normalised patterns out,
encoding included. With ``--checkpoint`` and ``--data`` the peak F1 on the test split is measured in both
precisions, to show what bfloat16 costs in accuracy.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from xrdzoo.model import PRECISIONS, autocast

BATCHES = (64, 256)


def matmul_flops(dtype: torch.dtype, device: str, repeats: int = 20) -> float:
    """Best of three timings of square matrix products: the machine's practical ceiling for dense work."""
    size = 8192 if device.startswith("cuda") else 2048  # a GPU needs large products to reach its peak
    a, b = torch.randn(size, size, dtype=dtype, device=device), torch.randn(size, size, dtype=dtype, device=device)
    best = float("inf")
    for _ in range(4):  # the first round warms up (thread pools, clocks, kernels)
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
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


def measure(task: str, batch: int, precision: str, seconds: float, device: str) -> dict:
    """One configuration, in this process: items per second over about ``seconds`` of steady work."""
    import xrdzoo
    from xrdzoo.data import load_dataset  # noqa: F401  (the same imports a user's process has)

    torch.manual_seed(0)
    model = xrdzoo.create_model("onehot", "resnet20").to(device)
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
    memory = (torch.cuda.max_memory_allocated(device) if device.startswith("cuda")
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"task": task, "batch": batch, "precision": precision, "items/s": rate, "peak MiB": memory / 2**20}


def peak_f1(checkpoint: str, data_path: str) -> dict:
    """Test-split peak F1 of a checkpoint in each precision."""
    import numpy as np

    import xrdzoo
    from xrdzoo.data import load_dataset
    from xrdzoo.metrics import peak_f1 as f1

    model, test = xrdzoo.load(checkpoint), load_dataset(data_path).select("test")
    keep, _ = model.encodable(test.formulas)
    formulas, true = [test.formulas[i] for i in keep], test.patterns[keep]
    return {p: float(np.mean(f1(model.predict(formulas, precision=p), true))) for p in PRECISIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="steady-state time per configuration")
    parser.add_argument("--checkpoint", help="trained weights, for the accuracy cost of bfloat16")
    parser.add_argument("--data", help="dataset whose test split scores --checkpoint")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with a GPU")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: TASK,BATCH,PRECISION in a fresh process
    args = parser.parse_args()
    if args.one:
        task, batch, precision = args.one.split(",")
        print(json.dumps(measure(task, int(batch), precision, args.seconds, args.device)))
        return

    from common import markdown_table, write_results

    import xrdzoo

    rows = []
    for task in ("inference", "training"):
        for batch in BATCHES:
            for precision in PRECISIONS:
                command = [sys.executable, __file__, "--one", f"{task},{batch},{precision}",
                           "--seconds", str(args.seconds), "--device", args.device]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    flops = model_flops(xrdzoo.create_model("onehot", "resnet20").eval())
    ceiling = {p: matmul_flops(getattr(torch, p), args.device) for p in PRECISIONS}
    for row in rows:
        per_item = flops * (1 if row["task"] == "inference" else 3)  # backward costs about twice the forward
        row["GFLOP/s"] = row["items/s"] * per_item / 1e9
        row["share of matmul peak"] = row["GFLOP/s"] * 1e9 / ceiling[row["precision"]]
    accuracy = peak_f1(args.checkpoint, args.data) if args.checkpoint and args.data else None

    where = "CPU" if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    memory = "the process's max RSS" if args.device == "cpu" else "the largest GPU memory allocated"
    lines = [f"## Speed (resnet20 + onehot, {where})\n\nForward cost {flops / 1e9:.3f} GFLOP per formula (training "
             f"counted as 3x). Measured matmul ceiling: {ceiling['float32'] / 1e9:.0f} GFLOP/s float32, "
             f"{ceiling['bfloat16'] / 1e9:.0f} GFLOP/s bfloat16 ({torch.get_num_threads()} CPU threads). "
             f"Inference is end to end (formula strings to normalised patterns); peak MiB is {memory}.",
             markdown_table(rows, ["task", "batch", "precision", "items/s", "GFLOP/s", "share of matmul peak",
                                   "peak MiB"])]
    fastest = max((r for r in rows if r["task"] == "inference"), key=lambda r: r["items/s"])
    lines.append(f"Fastest inference: {fastest['items/s']:.0f} formulas/s ({fastest['precision']}, batch "
                 f"{fastest['batch']}).")
    if accuracy:
        lines[-1] += (f" Test peak F1 of `{args.checkpoint}` on `{args.data}`: float32 {accuracy['float32']:.4f}, "
                      f"bfloat16 {accuracy['bfloat16']:.4f} (difference "
                      f"{accuracy['bfloat16'] - accuracy['float32']:+.4f}).")
    name = "speed" if args.device == "cpu" else "speed_" + torch.device(args.device).type
    write_results(name, {"device": where, "forward_flops": flops, "matmul_flops": ceiling, "rows": rows,
                         "peak_f1": accuracy}, "\n\n".join(lines))


if __name__ == "__main__":
    main()
