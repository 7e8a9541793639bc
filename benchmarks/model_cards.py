"""Write docs/models.md: a model card for each shipped weight, from the manifest and the accuracy benchmark.

    python benchmarks/accuracy.py ...        # first: scores the weights and the baselines on the test splits
    python benchmarks/model_cards.py

Nothing is typed by hand: every figure comes from benchmarks/results/accuracy.json, which says the command that
produced it, and every training detail from the weights' manifest (read through ``xrdzoo.hub``).
"""

from __future__ import annotations

import json

from common import DISTANCES, MODES, PAGE, RESULTS, ROOT, markdown_table
from xrdzoo import checkpoint, hub


def scores(weight: str, set_name: str, accuracy: dict) -> list[str]:
    """The weight's test figures on one data set, beside the baselines fitted on that set's training split."""
    scored = {label.split("/", 1)[1]: s for label, s in accuracy["results"].items()
              if label.split("/", 1)[0] == set_name}
    shown = [label for label in scored if label == weight or "baseline" in label]
    rows = [{"model": label, "row": title, **{d: scored[label][f"{d}/{mode}"] for d in DISTANCES}}
            for label in shown for mode, title in MODES.items()]
    peaks = [{"model": label, "n": scored[label]["n"], "peak recall": scored[label]["peak_recall"],
              "peak precision": scored[label]["peak_precision"], "peak F1": scored[label]["peak_f1"]}
             for label in shown]
    return [f"Test split of `{set_name}`, mean distances (lower is better), beside the baselines fitted on the "
            "same training split:", markdown_table(rows, ["model", "row", *DISTANCES]),
            markdown_table(peaks, ["model", "n", "peak recall", "peak precision", "peak F1"])]


def training(meta: dict) -> str:
    """How the weight was made: a network's recipe and chosen epoch, or what a fitted predictor learned."""
    train = meta["train"]
    if train["config"].get("predictor"):
        options = ", ".join(f"{k} {v}" for k, v in train["config"]["predictor_options"].items()) or "defaults"
        fit = {k: round(v, 4) for k, v in meta.get("fit", {}).items() if isinstance(v, float)}
        held = "every split" if meta.get("templates") == "all splits" else "the training split"
        calibration = ", ".join(f"{kind} {c['mean first score']:.3f} against {c['share first matched']:.3f} "
                                f"({c['formulas']:,} formulas)"
                                for kind, c in meta.get("fit", {}).get("calibration", {}).items() if c["formulas"])
        return (f"- fitted, not trained by gradient: predictor `{train['config']['predictor']}` ({options}); it "
                f"holds {held}'s structures; validation peak F1 {train['history'][-1]['val_peak_f1']:.4f}"
                + (f"; ranker validation figures {fit}" if fit else "")
                + (f"; scores calibrated on the validation split, per type mean first score against the share of "
                   f"first candidates that match: {calibration}" if calibration else ""))
    best = min(train["history"], key=lambda h: h["val_loss"])
    recipe = {k: v for k, v in train["config"].items() if k in ("loss", "lr", "batch_size", "seed") or
              (k.endswith("options") and v)}
    return (f"- training: {', '.join(f'{k} {v}' for k, v in recipe.items())}; the weights are those of epoch "
            f"{best['epoch']} (lowest validation loss, {best['val_loss']:.4f}); the per-epoch history up to it is "
            "in the file's metadata")


def card(weight: dict, accuracy: dict) -> str:
    """One model card: what the weight is, how it was made, and its test figures beside the baselines."""
    sets = [label.split("/", 1)[0] for label in accuracy["results"] if label.split("/", 1)[1] == weight["name"]]
    size = f"{weight['size'] / 2**20:.1f} MiB" if weight.get("size") else "?"
    meta = checkpoint.read_metadata(weight["shipped"])
    return "\n\n".join(filter(None, [
        f"## `{weight['name']}`",
        weight.get("description", ""),
        "\n".join([
            f"- file: `{weight['file']}` ({size}, sha256 `{weight['sha256']}`), shipped in the package"
            + (f"; also at {', '.join(weight['urls'])}" if weight.get("urls") else ""),
            f"- licence: {weight.get('license', '')}",
            f"- training data: {weight.get('data', '')}",
            f"- trained with: `{weight.get('command', '')}`",
            training(meta),
            *([f"- shipped in {len(weight['parts']) + 1} files served as one member: this one and "
               f"{', '.join(f'`{p}`' for p in weight['parts'])}"] if weight.get("parts") else []),
        ]),
        *([line for set_name in sets for line in scores(weight["name"], set_name, accuracy)]
          or by_type(weight) or ["(not scored yet: run benchmarks/accuracy.py)"]),
        f"Reproduce: `{accuracy['command']}`" if sets else "",
    ]))


def by_type(weight: dict) -> list[str]:
    """A member shipped with every structure (in parts): the per-type test figures of its training templates."""
    path = RESULTS / "template_types.json"
    if not weight.get("parts") or not path.exists():
        return []
    results = json.loads(path.read_text())
    columns = ["type", "k", "consensus", "sample", "retrieval F1", "default F1", "gain", "best of 5",
               "mean first score (top 1)", "share first matched (top 1)", "formulas/s"]
    return ["Test figures of this weight holding only the training split's templates (its ranker and volumes "
            "were fitted there, its scores calibrated on the validation split; as shipped it also holds the "
            "validation and test structures, so that known compounds are known), as shipped and with other answering "
            "options: `k`, how many nearest templates the ranker orders; `consensus` K, the answer is the peaks the "
            "ranker's first K candidates agree on (`--consensus K`; 1 is the ranker's first):",
            markdown_table(results["rows"], columns), f"Reproduce: `{results['command']}`"]


def main() -> None:
    weights = [vars(config) for config in hub.builtin_weights()]  # the manifest, through the API
    accuracy = json.loads((RESULTS / "accuracy.json").read_text())
    page = ["# Model cards", "The pretrained weights that ship with xrdzoo (`xrdzoo list weights`). Metrics are "
            "defined in [zoo.md](zoo.md#metrics); the same figures, with the paper's, are in "
            "[benchmarks.md](benchmarks.md)."]
    parts = {part for w in weights for part in w["parts"]}  # described in their member's card
    page += [card(w, accuracy) for w in weights if w["name"] not in parts]
    out = PAGE.with_name("models.md")
    out.write_text("\n\n".join(page) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
