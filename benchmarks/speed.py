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

BATCHES = (64, 256)
PRECISIONS = ("float32", "bfloat16")


def matmul_flops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Measured FLOP/s of a square matrix product, the machine's practical ceiling for dense work."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def model_flops(model) -> int:
    """Forward FLOPs of one formula (PyTorch's FLOP counter: convolutions and matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(model.encoder.encode(["BaTiO3"]))
    return counter.get_total_flops()


def measure(task: str, batch: int, precision: str, seconds: float) -> dict:
    """One configuration, in this process: items per second over about ``seconds`` of steady work."""
    import xrdzoo
    from xrdzoo.data import load_dataset  # noqa: F401  (the same imports a user's process has)

    torch.manual_seed(0)
    model = xrdzoo.create_model("onehot", "resnet20")
    formulas = ["BaTiO3", "SrTiO3", "NaCl", "MgAl2O4", "YAlO3", "CsInBr3", "Ca3SiO", "Co3Bi3N5"] * (batch // 8)
    if task == "inference":
        step = lambda: model.predict(formulas, batch_size=batch, precision=precision)  # noqa: E731
    else:
        model.train()
        inputs, targets = model.encoder.encode(formulas), torch.rand(batch, 1024)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        from xrdzoo.losses import PearsonLoss

        loss_fn = PearsonLoss()

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
                loss = loss_fn(model(inputs).float(), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    step()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += batch
    rate = done / (time.perf_counter() - start)
    return {"task": task, "batch": batch, "precision": precision, "items/s": rate,
            "peak MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: TASK,BATCH,PRECISION in a fresh process
    args = parser.parse_args()
    if args.one:
        task, batch, precision = args.one.split(",")
        print(json.dumps(measure(task, int(batch), precision, args.seconds)))
        return

    from common import markdown_table, write_results

    import xrdzoo

    rows = []
    for task in ("inference", "training"):
        for batch in BATCHES:
            for precision in PRECISIONS:
                out = subprocess.run([sys.executable, __file__, "--one", f"{task},{batch},{precision}",
                                      "--seconds", str(args.seconds)], capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    flops = model_flops(xrdzoo.create_model("onehot", "resnet20").eval())
    ceiling = {p: matmul_flops(getattr(torch, p)) for p in PRECISIONS}
    for row in rows:
        per_item = flops * (1 if row["task"] == "inference" else 3)  # backward costs about twice the forward
        row["GFLOP/s"] = row["items/s"] * per_item / 1e9
        row["share of matmul peak"] = row["GFLOP/s"] * 1e9 / ceiling[row["precision"]]
    accuracy = peak_f1(args.checkpoint, args.data) if args.checkpoint and args.data else None

    lines = [f"## Speed (resnet20 + onehot, CPU)\n\nForward cost {flops / 1e9:.3f} GFLOP per formula (training "
             f"counted as 3x). Measured matmul ceiling: {ceiling['float32'] / 1e9:.0f} GFLOP/s float32, "
             f"{ceiling['bfloat16'] / 1e9:.0f} GFLOP/s bfloat16 ({torch.get_num_threads()} threads). "
             "Inference is end to end (formula strings to normalised patterns); peak MiB is the process's max RSS.",
             markdown_table(rows, ["task", "batch", "precision", "items/s", "GFLOP/s", "share of matmul peak",
                                   "peak MiB"])]
    if accuracy:
        lines.append(f"Test peak F1 of `{args.checkpoint}` on `{args.data}`: float32 {accuracy['float32']:.4f}, "
                     f"bfloat16 {accuracy['bfloat16']:.4f} (difference "
                     f"{accuracy['bfloat16'] - accuracy['float32']:+.4f}).")
    write_results("speed", {"forward_flops": flops, "matmul_flops": ceiling, "rows": rows,
                            "peak_f1": accuracy}, "\n\n".join(lines))


if __name__ == "__main__":
    main()
