"""Template choice: how much of the best possible template the template predictors find, and how fast they are.

    python benchmarks/templates.py --data ternary=data/mp_ternary.npz --model ternary=template_learned.mp_ternary \
        --sample 2000

For a seeded sample of test formulas whose type has training templates, every one of the K = 20 nearest same-type
templates (element-fraction L1) is substituted and simulated as the predictors do, and scored (peak F1) against the
true pattern: the oracle of K is the mean of the best of the first K. Beside it: the nearest template, and the
template the chemistry ranker (fitted by the script on the set's training split) and each ``--model`` (a template
predictor: path or weight name, fitted on the same training split) choose. Then each model's speed: formulas per
second, predicting the whole test split in batches of 256 on this machine.

    python benchmarks/templates.py --by-type data/mp_all.npz --model all=template_learned.mp_all --sample 300 \
        --k 10 --k 40 --consensus 1 --consensus 10

``--by-type``: on a dataset of every formula type (``xrdzoo data build ... --subset all --polymorphs all``), per formula
type (binary, ternary, quaternary, quinary+), a seeded sample of the ``--split``'s formulas (test; val to choose options
on) scored against their ground-state pattern: the ``--model`` with only the templates of the training split (its ranker
and volumes fitted there and its scores calibrated on the validation split, as the shipped member's are), at each
``--k`` and ``--consensus``, against retrieval fitted there, peak F1, recall and precision, and the better of the two
per formula (a ceiling on choosing between them); best-of-K over its first K candidates (``answer(top=K)``); the
calibration of its first candidate's score (mean score against the share matched at peak F1 >= 0.8, over the formulas
whose first answer has a score) as it answers by default (top 1) and at ``top=10``; formulas per second answering the
sample (top 1, after one warm-up call that builds the member's index).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import xrdzoo
from accuracy import label, pairs
from common import markdown_table, start_compiled_kernel, training_templates, write_results
from xrdzoo.data import in_subset, load_dataset
from xrdzoo.metrics import MATCH_F1, peak_f1, peak_scores
from xrdzoo.formulas import formula_of
from xrdzoo.predictors.chemistry import mapping_cost
from xrdzoo.predictors.template import TYPES
from xrdzoo.xrd.simulate import simulate_cell

ORACLE_K = (1, 5, 10, 20)
BEST_OF = (1, 5, 10)


def candidate_scores(member, formula: str, truth: np.ndarray, k: int) -> np.ndarray:
    """Peak F1 of each of the k nearest same-type templates, substituted and simulated, nearest first."""
    query = formula_of(formula)
    rows, _ = member.templates.nearest(query, k)
    cells = [member.substituted_cell(query, row, mapping_cost(query, member.templates.formula(row))[1]) for row in rows]
    patterns = np.array([simulate_cell(*cell[:3]) for cell in cells]).reshape(-1, truth.size)
    return peak_f1(patterns, np.repeat(truth[None], len(rows), axis=0))


def by_type(data_path: str, model_name: str, sample_size: int, ks: list[int], consensus: list[int], split: str,
            name: str) -> None:
    """The ``--by-type`` tables (see the module's docstring)."""
    data = load_dataset(data_path)
    scored = data.select(split).ground_states()
    model = training_templates(xrdzoo.load(model_name), data)
    settings = [(k, agreed) for k in ks or [model.k] for agreed in consensus or [model.consensus]]
    retrieval = xrdzoo.create_predictor("retrieval")
    retrieval.fit(data.select("train"), progress=False)
    model.answer(["NaCl"])  # builds the member's index once: loading, not answering
    start_compiled_kernel(model)  # and numba's start-up, once
    rows = []
    for kind in TYPES:
        typed = [i for i, f in enumerate(scored.formulas) if in_subset(f, kind)]
        sample = np.sort(np.random.default_rng(0).choice(typed, min(sample_size, len(typed)), replace=False))
        formulas, truth = [scored.formulas[i] for i in sample], scored.patterns[sample]
        copied = retrieval.predict(formulas)
        for k, agreed in settings:
            model.k, model.consensus = k, agreed
            rows.append(type_row(model, formulas, truth, copied) | {"type": kind, "k": model.k,
                                                                     "consensus": model.consensus,
                                                                     "formulas in split": len(typed)})
            print(rows[-1], flush=True)
    accuracy = ["type", "k", "consensus", "formulas in split", "sample", "retrieval F1", "default F1", "gain",
                "better of the two", "retrieval recall", "default recall", "retrieval precision", "default precision"]
    ranked_columns = ["type", "k", "consensus", *[f"best of {k}" for k in BEST_OF],
                      *[f"{what} (top {top})" for top in (1, max(BEST_OF)) for what in ("mean first score",
                                                                                      "share first matched")],
                      "formulas/s"]
    markdown = "\n\n".join([
        "## Every formula type: template member against retrieval, best of K, calibration, speed"
        + ("" if split == "test" else f" ({split} split)"),
        f"`{label(model_name)}` with only the templates of the training split of `{data_path}` (its ranker and "
        "volumes were fitted there, its scores calibrated on the validation split) and retrieval (the nearest "
        f"training formula of the same type, fitted there) on a seeded sample of each type's {split} formulas, "
        "scored against each formula's ground-state pattern (peak F1, recall, precision). `k`: how many nearest "
        "same-type templates the ranker orders; `consensus` K: the answer is the peaks the ranker's first K "
        "candidates agree on (1: the ranker's first; Template.consensus). Better of the two: the mean, over the "
        "formulas, of the higher of the default's and retrieval's peak F1, what choosing between them per formula "
        "could reach at best.",
        markdown_table(rows, accuracy),
        "Best of K: the best peak F1 among the member's first K candidates (`answer(formulas, top=K)`). "
        "Calibration: the first candidate's mean score against the share of first candidates that match "
        "(peak F1 >= 0.8), over the formulas whose first candidate has a score (a formula whose type has no "
        "template answers with the nearest structure of any type, unscored), as the member answers by default "
        f"(top 1) and with `top={max(BEST_OF)}` (for a member that answers by consensus, its first candidates "
        "are then simulated to vote, so its first answer differs a little). Speed: formulas per second answering "
        "the sample (top 1), one process, once the compiled kernel has started.",
        markdown_table(rows, ranked_columns),
    ])
    write_results(name, {"split": split, "rows": rows}, markdown)


def type_row(model, formulas: list[str], truth: np.ndarray, copied: np.ndarray) -> dict:
    """One row of the ``--by-type`` tables: the member's answers to ``formulas`` against retrieval's ``copied``."""
    start = time.perf_counter()
    answered = model.answer(formulas)
    speed = len(formulas) / (time.perf_counter() - start)
    first_recall, first_precision, first_f1 = peak_scores(answered.patterns.intensities, truth)
    ranked = model.answer(formulas, top=max(BEST_OF)).ranked()
    f1s = [peak_f1(np.array([c.pattern for c in cands]), np.repeat(t[None], len(cands), 0))
           for cands, t in zip(ranked, truth)]
    copied_recall, copied_precision, copied_f1 = peak_scores(copied, truth)
    row = {"sample": len(formulas), "retrieval F1": float(copied_f1.mean()), "default F1": float(first_f1.mean())}
    row["gain"] = row["default F1"] - row["retrieval F1"]
    row["better of the two"] = float(np.maximum(first_f1, copied_f1).mean())  # per formula: a ceiling on choosing
    row |= {"retrieval recall": float(copied_recall.mean()), "default recall": float(first_recall.mean()),
            "retrieval precision": float(copied_precision.mean()), "default precision": float(first_precision.mean())}
    row |= {f"best of {k}": float(np.mean([f[:k].max() for f in f1s])) for k in BEST_OF}
    calibrated = ((1, answered.ranked(), first_f1), (max(BEST_OF), ranked, np.array([f[0] for f in f1s])))
    for top, answers, f1_of_first in calibrated:
        scores = np.array([cands[0].score if cands[0].score is not None else np.nan for cands in answers])
        scored = np.isfinite(scores)  # a formula whose type has no template answers unscored (the nearest structure)
        row |= {f"mean first score (top {top})": float(scores[scored].mean()) if scored.any() else None,
                f"share first matched (top {top})": float(np.mean(f1_of_first[scored] >= MATCH_F1))
                if scored.any() else None}
    return row | {"formulas/s": speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", default=[], help="SET=dataset file (repeatable)")
    parser.add_argument("--model", action="append", default=[], help="SET=template predictor (repeatable)")
    parser.add_argument("--sample", type=int, default=2000, help="test formulas in the template-choice sample")
    parser.add_argument("--by-type", help="dataset of every formula type: the per-type tables instead")
    parser.add_argument("--split", default="test", help="with --by-type: the split to score (test, or val to choose "
                        "options on)")
    parser.add_argument("--name", default="template_types", help="with --by-type: the results' name")
    parser.add_argument("--k", type=int, action="append", default=[],
                        help="with --by-type: how many templates the ranker orders (repeatable; the member's own if none)")
    parser.add_argument("--consensus", type=int, action="append", default=[],
                        help="with --by-type: a consensus K to measure the member at (repeatable; its own if none)")
    args = parser.parse_args()
    if args.by_type:
        by_type(args.by_type, pairs(args.model, "--model")[0][1], args.sample, args.k, args.consensus, args.split,
                args.name)
        return

    choice_rows, speed_rows, results = [], [], {}
    for set_name, data_path in pairs(args.data, "--data"):
        data = load_dataset(data_path)
        test = data.select("test")
        reference = xrdzoo.create_predictor("template")  # the chemistry ranker: fitted in a second
        reference.fit(data.select("train"), progress=False)
        models = {"template (chemistry ranker, fitted here)": reference}
        models |= {label(name): xrdzoo.load(name) for s, name in pairs(args.model, "--model") if s == set_name}
        typed = [i for i, f in enumerate(test.formulas) if formula_of(f).kind in reference.templates.by_kind]
        sample = np.sort(np.random.default_rng(0).choice(typed, min(args.sample, len(typed)), replace=False))
        formulas = [test.formulas[i] for i in sample]
        start = time.perf_counter()
        scores = [candidate_scores(reference, f, test.patterns[i], max(ORACLE_K)) for f, i in zip(formulas, sample)]
        print(f"{set_name}: {len(sample)} formulas x {max(ORACLE_K)} templates scored in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        row = {"set": set_name, "formulas": len(sample), "of test formulas with a template": len(typed) / len(test)}
        row |= {f"oracle of {k}": float(np.mean([s[:k].max() for s in scores])) for k in ORACLE_K}
        for name, model in models.items():
            row[name] = float(peak_f1(model.predict(formulas), test.patterns[sample]).mean())
        choice_rows.append(row)
        for name, model in models.items():
            start = time.perf_counter()
            for i in range(0, len(test), 256):
                model.predict(test.formulas[i : i + 256])
            seconds = time.perf_counter() - start
            speed_rows.append({"set": set_name, "model": name, "formulas": len(test),
                               "formulas/s": len(test) / seconds})
            print(f"{set_name} {name}: {len(test) / seconds:.0f} formulas/s", flush=True)
        results[set_name] = {"choice": row, "speed": [r for r in speed_rows if r["set"] == set_name]}

    columns = ["set", "formulas", "of test formulas with a template", *[f"oracle of {k}" for k in ORACLE_K]]
    markdown = "\n\n".join([
        "## Template choice and template predictor speed",
        "Mean test peak F1 on a seeded sample of test formulas whose formula type has training templates. "
        "`oracle of K`: the best of the K nearest same-type templates (element-fraction L1), each substituted and "
        "simulated as the predictors do; `oracle of 1` is the nearest template. The remaining columns are what each "
        "template predictor achieves on the same formulas: the headroom between them and the oracles is what a "
        "better ranker can still win.",
        markdown_table(choice_rows, columns + [c for c in choice_rows[0] if c not in columns]),
        "Speed: the whole test split predicted in batches of 256 (substitution and simulation on one core; "
        "the ranker's network is tiny).",
        markdown_table(speed_rows, ["set", "model", "formulas", "formulas/s"]),
    ])
    write_results("templates", results, markdown)


if __name__ == "__main__":
    main()
