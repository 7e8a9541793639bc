"""Ship a template member fitted on the training split as a weight that knows every structure, in parts.

    python benchmarks/ship_templates.py --checkpoint runs/template_learned_mp_all/best.safetensors \
        --data data/mp_all.npz --name template_learned.mp_all --option k=40 \
        --recipe "xrdzoo train --data data/mp_all.npz --predictor template ... --output runs/template_learned_mp_all"

The member's ranker and its volumes stay those fitted on the training split (its benchmark figures are that
member's); its scores are calibrated on the validation split at the shipped options (``k``: the first candidate of
40 is not the first of 10); then the validation and test structures are added as templates so that every known
compound answers with its own structures. The checkpoint may be a shipped weight itself (its name): only its
training-split templates are kept before the others are added again, so reshipping with other ``--option``s (the
member's answering options, such as ``k``) changes nothing else. The files are split by element count (1-2, 3, 4,
5+) so each stays under 20 MiB, listed in weights/manifest.json as one weight and its parts. ``--metrics`` puts the
train-only member's test figures from its per-type benchmark (``templates.py --by-type``, at the shipped ``k`` and
``consensus``) on the card, where ``xrdzoo list`` shows them: that benchmark runs on the shipped weight, so ship,
run it, then ship again from the shipped weight with ``--metrics benchmarks/results/template_types.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import xrdzoo
from common import ROOT, training_templates
from xrdzoo import checkpoint, hub
from xrdzoo.data import load_dataset
from xrdzoo.arrays import array_strings
from xrdzoo.predictors.template import own_peaks
from xrdzoo.publish import export_parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="template member fitted on the training split")
    parser.add_argument("--data", required=True, help="the dataset it was fitted on (every polymorph)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--recipe", help="the command that fitted --checkpoint, recorded in the manifest before "
                        "this one's")
    parser.add_argument("--metrics", help="the train-only member's test figures for the card: a `templates.py "
                        "--by-type` result (benchmarks/results/template_types.json), read at the shipped k and "
                        "consensus")
    parser.add_argument("--option", action="append", default=[], help="answering option KEY=VALUE (JSON value) "
                        "set on the shipped member, e.g. k=20 (repeatable)")
    args = parser.parse_args()

    data = load_dataset(args.data)
    member = training_templates(xrdzoo.load(args.checkpoint), data)
    options = {key: json.loads(value) for key, value in (option.split("=", 1) for option in args.option)}
    for key, value in options.items():
        setattr(member, key, value)
    member.config = {**member.config, "options": {**member.config["options"], **options}}
    calibration = member.calibrate(data.select("val"))
    print(f"calibration: {calibration}")
    rest = xrdzoo.create_predictor("template", volume="template")  # its structures only: no ranker, volumes unused
    rest.fit(data.take(np.flatnonzero(data.split != "train")), progress=False)
    member.join(rest)
    # The training rows' energies and own peaks too, where the checkpoint predates them.
    row_of = {material: i for i, material in enumerate(data.ids)}
    rows = np.array([row_of[i] for i in array_strings(member.ids)])
    member.e_above_hull = data.e_above_hull[rows].astype(np.float32)
    member.peak_angles, member.peak_heights = own_peaks(data.patterns[rows])
    meta = checkpoint.read_metadata(hub.resolve(args.checkpoint))
    extra = {k: v for k, v in meta.items() if k not in ("format", "xrdzoo_version", "model")}
    replaced = ("val_first_mean_score", "val_first_match_share")  # an older fit's calibration over all candidates
    extra["fit"] = {**{k: v for k, v in extra.get("fit", {}).items() if k not in replaced}, "calibration": calibration}
    with tempfile.TemporaryDirectory() as folder:
        whole = checkpoint.save(Path(folder) / "whole.safetensors", member, {**extra, "templates": "all splits"})
        configs = export_parts(
            whole, ROOT / "weights", args.name, [[1, 2], [3], [4], list(range(5, 10))],
            manifest=ROOT / "weights" / "manifest.json", license="CC-BY-4.0 (Materials Project structures)",
            data=f"every structure (all polymorphs, train+val+test) of the shared Materials Project binaries, "
                 f"ternaries, quaternaries and 5-9-element compounds ({len(data):,} structures of "
                 f"{len(set(data.formulas)):,} formulas), each with its energy above the hull; ranker and volumes "
                 "fitted on the training split only, scores calibrated on the validation split",
            command=(f"{args.recipe} && " if args.recipe else "")
                    + f"python benchmarks/ship_templates.py --checkpoint {args.checkpoint} --data {args.data} "
                    f"--name {args.name}" + "".join(f" --option {option}" for option in args.option),
            description="template substitution with the learned ranker, every formula type, every known "
                        "polymorph; test figures are those of the member fitted on the training split only "
                        "(docs/benchmarks.md, template_types)",
            metrics=card_metrics(args.metrics, member.k, member.consensus) if args.metrics else {})
    for config in configs:
        print(f"{config.file}: {config.size / 2**20:.1f} MiB")


def card_metrics(path: str, k: int, consensus: int) -> dict:
    """The test figures of a ``templates.py --by-type`` run at ``k`` and ``consensus``: peak F1, recall and
    precision over every formula type (each type's mean weighted by its formulas) and peak F1 per type."""
    result = json.loads(Path(path).read_text())
    rows = [row for row in result["rows"] if (row["k"], row["consensus"]) == (k, consensus)]
    if result["split"] != "test" or not rows:
        raise SystemExit(f"{path} holds no test figures at k {k} and consensus {consensus}: run benchmarks/"
                         "templates.py --by-type with them")
    n = sum(row["sample"] for row in rows)
    mean = {key: sum(row[f"default {key}"] * row["sample"] for row in rows) / n
            for key in ("F1", "recall", "precision")}
    return {"split": "test", "n": n, "measured_by": result["command"], "peak_f1": mean["F1"],
            "peak_recall": mean["recall"], "peak_precision": mean["precision"],
            **{f"peak_f1/{row['type']}": row["default F1"] for row in rows}}


if __name__ == "__main__":
    main()
