"""The paper's Table 3 (one model per loss) and its depth sweep, at one equal training budget per run.

    python benchmarks/losses.py --data data/mp_abc3.npz --epochs 4

Every run trains resnet20 + onehot (or resnet10..25 + pearson for the depth sweep) with the same seed, learning
rate, batch size and number of epochs, keeps its best-validation checkpoint, and is scored on the test split.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import xrdzoo
from common import markdown_table, write_results
from xrdzoo.data import load_dataset
from xrdzoo.evaluate import evaluate_model
from xrdzoo.train import TrainConfig, train

LOSSES = ("mse", "msle", "cosine", "pearson", "softdtw", "wasserstein", "smooth_pearson")
DEPTHS = ("resnet10", "resnet15", "resnet20", "resnet25")
PAPER_PEAK_MATCH = {  # Table 3, peak match on test
    "mp_abc3": {"mse": 0.626, "msle": 0.644, "cosine": 0.673, "pearson": 0.681},
    "mp_ternary": {"mse": 0.612, "msle": 0.631, "cosine": 0.667, "pearson": 0.678},
}


def run(args, backbone: str, loss: str) -> dict:
    """Train one model at the shared budget, then score its best checkpoint on the test split."""
    out = Path(args.runs) / f"{backbone}_{loss}"
    config = TrainConfig(data=args.data, output=str(out), backbone=backbone, loss=loss, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed, patience=args.epochs)
    start = time.perf_counter()
    best = train(config, progress=False)
    seconds = time.perf_counter() - start
    scores = evaluate_model(xrdzoo.load(str(best)), load_dataset(args.data), "test")
    print(f"{backbone} + {loss}: peak F1 {scores['peak_f1']:.4f}, train {seconds:.0f} s", flush=True)
    return {"backbone": backbone, "loss": loss, "train seconds": seconds, "checkpoint": str(best), **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset file from `xrdzoo data build`")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/benchmark-losses", help="where the runs' checkpoints go")
    parser.add_argument("--losses", nargs="*", default=list(LOSSES))
    parser.add_argument("--depths", nargs="*", default=list(DEPTHS))
    args = parser.parse_args()

    set_name = Path(args.data).name.split(".")[0]
    by_loss = [run(args, "resnet20", loss) for loss in args.losses]
    by_depth = [next(r for r in by_loss if r["loss"] == "pearson") if d == "resnet20" and "pearson" in args.losses
                else run(args, d, "pearson") for d in args.depths]
    paper = PAPER_PEAK_MATCH.get(set_name, {})
    for row in by_loss:
        row["paper peak match"] = paper.get(row["loss"])
    columns = ["peak_recall", "peak_precision", "peak_f1", "pearson/all", "cosine/aligned", "train seconds"]
    budget = (f"Budget: {args.epochs} epochs each, batch {args.batch_size}, learning rate {args.lr}, seed "
              f"{args.seed}, best validation epoch kept; test split of `{args.data}`.")
    markdown = "\n\n".join([
        f"## Losses and depth ({set_name})\n\n{budget} A reduced CPU budget: the ranking, not the level, is the "
        "finding. `paper peak match` is the paper's Table 3 figure for that loss (its own split and full training).",
        markdown_table(by_loss, ["loss", *columns, "paper peak match"]),
        "Depth sweep, Pearson loss:",
        markdown_table(by_depth, ["backbone", *columns]),
    ])
    write_results(f"losses_{set_name}", {"budget": vars(args), "losses": by_loss, "depths": by_depth}, markdown)


if __name__ == "__main__":
    main()
