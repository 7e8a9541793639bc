"""The paper's Table 3 (one model per loss), its depth sweep, and batch normalisation, at one equal training budget.

    python benchmarks/losses.py --data data/mp_abc3.npz --epochs 4

Every run trains resnet20 + onehot (or resnet10..25 + pearson for the depth sweep, or resnet20 + pearson with
``batchnorm=True``) with the same seed, learning rate, batch size and number of epochs, keeps its best-validation
checkpoint, and is scored on the test split. With ``--reuse``, rows of an earlier results file with the same
budget are kept instead of trained again (each row names its checkpoint).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import xrdzoo
from common import RESULTS, markdown_table, write_results
from xrdzoo.data import load_dataset
from xrdzoo.evaluate import evaluate_model
from xrdzoo.train import TrainConfig, train

LOSSES = ("mse", "msle", "cosine", "pearson", "softdtw", "wasserstein", "smooth_pearson")
DEPTHS = ("resnet10", "resnet15", "resnet20", "resnet25")
PAPER_PEAK_MATCH = {  # Table 3, peak match on test
    "mp_abc3": {"mse": 0.626, "msle": 0.644, "cosine": 0.673, "pearson": 0.681},
    "mp_ternary": {"mse": 0.612, "msle": 0.631, "cosine": 0.667, "pearson": 0.678},
}


def run(args, backbone: str, loss: str, **backbone_options) -> dict:
    """Train one model at the shared budget and score its best checkpoint on the test split (or reuse its row)."""
    key = {"backbone": backbone, "loss": loss, "backbone options": backbone_options}
    if (row := next((r for r in args.done if all(r.get(k) == v for k, v in key.items())), None)):
        return row
    suffix = "".join(f"_{k}" for k, v in backbone_options.items() if v)
    out = Path(args.runs) / f"{backbone}_{loss}{suffix}"
    config = TrainConfig(data=args.data, output=str(out), backbone=backbone, loss=loss, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed, patience=args.epochs,
                         backbone_options=backbone_options)
    start = time.perf_counter()
    best = train(config, progress=False)
    seconds = time.perf_counter() - start
    scores = evaluate_model(xrdzoo.load(str(best)), load_dataset(args.data), "test")
    print(f"{backbone} + {loss} {backbone_options or ''}: peak F1 {scores['peak_f1']:.4f}, train {seconds:.0f} s",
          flush=True)
    args.done.append({**key, "train seconds": seconds, "checkpoint": str(best), **scores})
    return args.done[-1]


def previous_rows(args, set_name: str) -> list[dict]:
    """Rows of the earlier results file for this data set, when ``--reuse`` is given and its budget is this one."""
    path = RESULTS / f"losses_{set_name}.json"
    if not args.reuse or not path.exists():
        return []
    old = json.loads(path.read_text())
    same = all(old["budget"].get(k) == getattr(args, k) for k in ("data", "epochs", "batch_size", "lr", "seed"))
    rows = old["losses"] + old["depths"] + old.get("normalisation", [])
    return [{"backbone options": {}, **r} for r in rows] if same else []


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
    parser.add_argument("--reuse", action="store_true", help="keep rows of the last results file with this budget")
    args = parser.parse_args()

    set_name = Path(args.data).name.split(".")[0]
    args.done = previous_rows(args, set_name)  # rows trained or reused so far
    by_loss = [run(args, "resnet20", loss) for loss in args.losses]
    by_depth = [run(args, d, "pearson") for d in args.depths]
    by_norm = [run(args, "resnet20", "pearson"), run(args, "resnet20", "pearson", batchnorm=True)]
    for row in by_norm:
        row["batchnorm"] = bool(row["backbone options"].get("batchnorm"))
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
        "Batch normalisation after every convolution (the paper has none), resnet20 + Pearson loss (train seconds "
        "are left out: rows can come from different runs on a shared machine, see the JSON):",
        markdown_table(by_norm, ["batchnorm", *columns[:-1]]),
    ])
    budget = {k: v for k, v in vars(args).items() if k != "done"}
    write_results(f"losses_{set_name}", {"budget": budget, "losses": by_loss, "depths": by_depth,
                                         "normalisation": by_norm}, markdown)


if __name__ == "__main__":
    main()
