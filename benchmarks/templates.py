"""Template choice: how much of the best possible template the template predictors find, and how fast they are.

    python benchmarks/templates.py --data ternary=data/mp_ternary.npz --model ternary=template_learned.mp_ternary \
        --sample 2000

For a seeded sample of test formulas whose type has training templates, every one of the K = 20 nearest same-type
templates (element-fraction L1) is substituted and simulated as the predictors do, and scored (peak F1) against the
true pattern: the oracle of K is the mean of the best of the first K. Beside it: the nearest template, and the
template the chemistry ranker (fitted by the script on the set's training split) and each ``--model`` (a template
predictor: path or weight name, fitted on the same training split) choose. Then each model's speed: formulas per
second, predicting the whole test split in batches of 256 on this machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import xrdzoo
from accuracy import label, pairs
from common import markdown_table, write_results
from xrdzoo.data import load_dataset
from xrdzoo.metrics import peak_f1
from xrdzoo.predictors.chemistry import formula_of, mapping_cost
from xrdzoo.xrd.simulate import simulate_cell

ORACLE_K = (1, 5, 10, 20)


def candidate_scores(member, formula: str, truth: np.ndarray, k: int) -> np.ndarray:
    """Peak F1 of each of the k nearest same-type templates, substituted and simulated, nearest first."""
    query = formula_of(formula)
    rows, _ = member.templates.nearest(query, k)
    cells = [member.substituted_cell(query, row, mapping_cost(query, member.templates.formulas[row])[1]) for row in rows]
    patterns = np.array([simulate_cell(*cell[:3]) for cell in cells]).reshape(-1, truth.size)
    return peak_f1(patterns, np.repeat(truth[None], len(rows), axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, help="SET=dataset file (repeatable)")
    parser.add_argument("--model", action="append", default=[], help="SET=template predictor (repeatable)")
    parser.add_argument("--sample", type=int, default=2000, help="test formulas in the template-choice sample")
    args = parser.parse_args()

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
