"""The `xrdzoo` command line: each command is a few lines over the Python API."""

from __future__ import annotations

import fnmatch
import json
import math
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

import xrdzoo
from xrdzoo import DEFAULT_MODEL, __version__, registry
from xrdzoo.errors import XRDZooError, at_least_one, first_line
from xrdzoo.files import atomic_path, refuse_overwrite
from xrdzoo.formulas import DEFAULT_MAX_ATOMS
from xrdzoo.identify import ALL_KNOWN, DEFAULT_CANDIDATES, STABLE_ABOVE_HULL
from xrdzoo.plot import plot_patterns



# What a user can fix: xrdzoo's own errors and the files they named that cannot be opened. Anything else is a bug
# and keeps its traceback.
USER_ERRORS = (XRDZooError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class _Group(TyperGroup):
    """Turns the errors a user can fix (bad formula, file, checkpoint, plugin, network) into one line, not a
    traceback; set XRDZOO_DEBUG=1 to see the traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            if os.environ.get("XRDZOO_DEBUG"):
                raise
            typer.echo(f"Error: {first_line(error)}", err=True)
            raise typer.Exit(1) from error


def _within(low: float, high: float = math.inf, above: bool = False):
    """A typer callback refusing a number below ``low`` (at or below it with ``above``) or above ``high``, NaN and
    infinity included, in one line naming the option."""
    def check(ctx: typer.Context, param: typer.CallbackParam, value):
        if value is not None and not (math.isfinite(value) and (value > low if above else value >= low)
                                      and value <= high):
            bounds = f"{'above' if above else 'at least'} {low:g}" + (f" and at most {high:g}" if high < math.inf else "")
            raise typer.BadParameter(f"{value!r} is out of range: give a number {bounds}")
        return value
    return check


app = typer.Typer(cls=_Group, help="Predict powder XRD patterns from chemical formulas.", no_args_is_help=True)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"xrdzoo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True)] = False,
) -> None:
    """xrdzoo: powder XRD patterns from chemical formulas, and a zoo of models that predict them."""

# --- registry: list ---------------------------------------------------------------------------


@app.command("list")
def list_command(
    kind: Annotated[str, typer.Argument(help=f"one of: {', '.join(registry.KINDS)}, or all")] = "all",
    pattern: Annotated[str, typer.Argument(help="shell wildcard on names, e.g. 'resnet*'")] = "*",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="show plugins that failed to load")] = False,
) -> None:
    """List registered encoders, backbones, losses, metrics and weights (built-in and from plugins)."""
    try:
        kinds = registry.KINDS if kind == "all" else (registry.kind_name(kind),)
        rows = [
            {"name": e.name, "kind": e.kind, "package": e.package, "version": e.version,
             "description": registry.describe(e)}
            for k in kinds for e in registry.entries(k) if fnmatch.fnmatchcase(e.name, pattern)
        ]
    except registry.PluginError as error:
        raise typer.BadParameter(str(error), param_hint="KIND") from error
    failed = [vars(f) for f in registry.failures()]
    if as_json:
        typer.echo(json.dumps({"components": rows, "errors": failed} if errors else rows, indent=2))
        return
    _print_table(rows, ["name", "kind", "package", "version", "description"])
    if errors:
        typer.echo(f"\n{len(failed)} plugin(s) failed to load" + (":" if failed else "."))
        _print_table(failed, ["name", "kind", "package", "error"])
    elif failed:
        typer.echo(f"\n{len(failed)} plugin(s) failed to load; see `xrdzoo list --errors`.", err=True)


def _print_table(rows: list[dict], columns: list[str]) -> None:
    """A plain aligned text table."""
    if not rows:
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        typer.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())

# --- xrd: wavelengths, grids and profiles (simulate, predict) -------------------------------------------------

_CANDIDATES = typer.Option(help="score each composition by the best of its first K predicted candidates (known "
                                 "polymorphs, then templates) and say which matched", callback=_within(1))
_WAVELENGTH = typer.Option(help="CuKa, MoKa, CoKa, FeKa, CrKa, AgKa or a wavelength in Angstrom (default CuKa)")
_GRID = typer.Option("--two-theta", help="output grid start:stop:step in degrees, e.g. 5:90:0.02")
_AXIS = typer.Option(help="x axis of written files and plots: two_theta, q (1/A) or d (A)")
_PROFILE = typer.Option(help="peak shape with --fwhm or --caglioti: gaussian, lorentzian, pseudo-voigt")
_CAGLIOTI = typer.Option(help="peak widths by Caglioti U,V,W (degrees^2), e.g. 0.02,-0.01,0.01")
_DOUBLET = typer.Option(help="split peaks into K-alpha1 and K-alpha2 (2:1); needs a tube name and a width")


def _write_and_plot(frame, output, plot, names: list[str], patterns, source: str, title: str,
                    also: Optional[dict] = None) -> None:
    """Write the drawn ``patterns`` (one per name) to ``output`` on the frame's axis and plot them, with the ``also``
    patterns ({label: Pattern}, drawn on the frame too), to ``plot``."""
    from xrdzoo.prediction import write_patterns

    if output:
        typer.echo(f"wrote {', '.join(map(str, write_patterns(output, names, patterns, frame.axis)))}")
    if plot:
        curves = {f"{name} {source}": patterns[i] for i, name in enumerate(names)}
        curves |= {label: frame.draw(pattern) for label, pattern in (also or {}).items()}
        typer.echo(f"wrote {plot_patterns(plot, curves, title, frame.axis, sticks=frame.profile is None)}")

# --- xrd: simulate ----------------------------------------------------------------------------


@app.command("simulate")
def simulate_command(
    structure_file: Annotated[Path, typer.Argument(help="structure file pymatgen reads: CIF, POSCAR, ...")],
    fwhm: Annotated[Optional[float], typer.Option(help="peak width (FWHM, degrees 2-theta) of --profile, "
                                                       "Gaussian unless told")] = None,
    simulator: Annotated[str, typer.Option(help="fast, or pymatgen (the reference; also gives hkl)")] = "fast",
    output: Annotated[Optional[Path], typer.Option(help="write the 1,024-point pattern: .csv, .json, .jsonl, .xy")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="draw the pattern to this PNG")] = None,
    wavelength: Annotated[Optional[str], _WAVELENGTH] = None,
    two_theta: Annotated[Optional[str], _GRID] = None,
    axis: Annotated[str, _AXIS] = "two_theta",
    profile: Annotated[str, _PROFILE] = "gaussian",
    caglioti: Annotated[Optional[str], _CAGLIOTI] = None,
    doublet: Annotated[bool, _DOUBLET] = False,
) -> None:
    """Simulate a structure's powder XRD pattern (Cu K-alpha or --wavelength, 2-theta 0..180): peak list, pattern, plot."""
    from xrdzoo.xrd import simulate as xrd
    from xrdzoo.xrd.frame import Frame
    from xrdzoo.xrd.profiles import radiation

    refuse_overwrite([structure_file], output=output, plot=plot)
    structure = xrd.read_structure(structure_file)
    frame = Frame.of(wavelength or "CuKa", two_theta, axis, profile, fwhm, caglioti, doublet)
    formula = structure.composition.reduced_formula
    peaks = xrd.reflections(structure, simulator, frame.wavelength)
    rows = [{"two_theta": f"{t:.3f}", "intensity": f"{i:.2f}", "d_spacing": f"{d:.4f}", "hkl": h}
            for t, i, d, h in zip(peaks.two_theta, peaks.intensities, peaks.d, peaks.hkls or [""] * len(peaks.d))]
    typer.echo(f"{formula}: {len(rows)} peaks ({simulator} simulator, {radiation(frame.wavelength)})")
    _print_table(rows, ["two_theta", "intensity", "d_spacing"] + (["hkl"] if peaks.hkls else []))
    _write_and_plot(frame, output, plot, [formula], frame.draw(peaks[None]), f"({simulator})", structure_file.name)

# --- data: build ------------------------------------------------------------------------------

data_app = typer.Typer(help="Datasets of simulated patterns: build one from structures, show one.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("build")
def data_build(
    sources: Annotated[list[Path], typer.Argument(help="one or more sources, read as one: CSV (.csv/.csv.gz) with a "
                                                       "cif column, folder of CIF/POSCAR files, or pymatgen JSON")],
    output: Annotated[Path, typer.Option(help="dataset file to write, e.g. data/mp_abc3.npz")],
    subset: Annotated[Optional[str], typer.Option(help="all, binary, ternary, quaternary, quinary+, an element count "
                                                       "such as 5, abc3, or an anonymous formula such as AB2C4")] = None,
    polymorphs: Annotated[str, typer.Option(help="one (the ground state of each formula) or all")] = "one",
    seed: Annotated[int, typer.Option(help="seed of the 70/10/20 split by formula", callback=_within(0))] = 0,
    simulator: Annotated[str, typer.Option(help="fast, or pymatgen (the reference)")] = "fast",
    workers: Annotated[Optional[int], typer.Option(help="processes (default: all cores)", callback=_within(1))] = None,
    force: Annotated[bool, typer.Option(help="rebuild even if the file is up to date")] = False,
) -> None:
    """Build a dataset: one structure per formula (or every polymorph), simulated patterns, a fixed split by
    formula; skips counted by reason."""
    from xrdzoo.data import build_dataset

    typer.echo(build_dataset(sources, output, subset, seed, simulator, workers, force, polymorphs=polymorphs).describe())


@data_app.command("info")
def data_info(path: Annotated[Path, typer.Argument(help="dataset file from `xrdzoo data build`")]) -> None:
    """Show a dataset: formulas per split, build settings, skip report, content hash."""
    from xrdzoo.data import load_dataset

    typer.echo(load_dataset(path).describe())

# --- model: train, evaluate, predict ----------------------------------------------------------


def _options(pairs: list[str] | None, flag: str) -> dict:
    """``key=value`` pairs (values parsed as JSON where they parse, else kept as text) into a dict."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value, e.g. {flag} dropout=0.2", param_hint=flag)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="dataset file from `xrdzoo data build`")],
    encoder: Annotated[str, typer.Option(help="registered encoder (xrdzoo list encoders)")] = "onehot",
    backbone: Annotated[str, typer.Option(help="registered backbone, or timm/<model>")] = "resnet20",
    loss: Annotated[str, typer.Option(help="registered loss (xrdzoo list losses)")] = "pearson",
    output: Annotated[Path, typer.Option(help="run folder: best/last checkpoints and history")] = Path("runs/default"),
    epochs: int = 50,
    lr: Annotated[float, typer.Option(callback=_within(0, 10, above=True))] = 1e-3,
    batch_size: int = 64,
    dropout: Annotated[Optional[float], typer.Option(help="backbone dropout (its default if omitted)",
                                                     callback=_within(0, 0.99))] = None,
    seed: Annotated[int, typer.Option(callback=_within(0))] = 0,
    patience: Annotated[int, typer.Option(help="stop after this many epochs without a better validation loss",
                                          callback=_within(1))] = 10,
    encoder_option: Annotated[Optional[list[str]], typer.Option(help="encoder key=value, repeatable")] = None,
    backbone_option: Annotated[Optional[list[str]], typer.Option(help="backbone key=value, repeatable")] = None,
    loss_option: Annotated[Optional[list[str]], typer.Option(help="loss key=value, repeatable")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ...")] = "cpu",
    precision: Annotated[str, typer.Option(help="float32, or bfloat16 autocast (faster on CPUs with AVX-512 BF16)")] = "float32",
    resume: Annotated[bool, typer.Option(help="continue the run in --output from its last finished epoch "
                                               "(--epochs, --device, --precision and the --data path may change; "
                                               "the data's content may not)")] = False,
    predictor: Annotated[Optional[str], typer.Option(help="fit a registered predictor (xrdzoo list predictors: "
                                                          "retrieval, template) instead of encoder + backbone")] = None,
    predictor_option: Annotated[Optional[list[str]], typer.Option(help="predictor key=value, repeatable")] = None,
) -> None:
    """Train a network, or fit a baseline (mean, knn) or predictor (retrieval, template); save safetensors."""
    from xrdzoo.train import TrainConfig, TrainingInterrupted, train as run

    config = TrainConfig(
        data=str(data), output=str(output), encoder=encoder, backbone=backbone, loss=loss, epochs=epochs, lr=lr,
        batch_size=batch_size, dropout=dropout, seed=seed, patience=patience, device=device,
        precision=precision,
        encoder_options=_options(encoder_option, "--encoder-option"),
        backbone_options=_options(backbone_option, "--backbone-option"),
        loss_options=_options(loss_option, "--loss-option"), predictor=predictor,
        predictor_options=_options(predictor_option, "--predictor-option"),
    )
    try:
        best = run(config, resume=resume)
    except TrainingInterrupted as stop:
        raise typer.Exit(stop.exit_code) from None
    typer.echo(f"best checkpoint: {best}")


@app.command()
def evaluate(
    checkpoint: Annotated[str, typer.Argument(help="checkpoint path or pretrained weight name")],
    data: Annotated[Path, typer.Option(help="dataset file from `xrdzoo data build`")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    output: Annotated[Optional[Path], typer.Option(help="also write the metrics as JSON here")] = None,
) -> None:
    """Evaluate a checkpoint on a dataset split: every metric in the paper's three modes, plus peak P/R/F1."""
    from xrdzoo.data import load_dataset
    from xrdzoo.evaluate import evaluate_model

    refuse_overwrite([data, Path(checkpoint)], output=output)
    model = xrdzoo.load(checkpoint)
    results = evaluate_model(model, load_dataset(data), split)
    rows = [{"metric": k, "value": f"{v:.4f}" if isinstance(v, float) else v} for k, v in results.items()]
    _print_table(rows, ["metric", "value"])
    if output:
        with atomic_path(output) as partial:
            partial.write_text(json.dumps({"checkpoint": checkpoint, "data": str(data), "split": split, **results},
                                          indent=2))
        typer.echo(f"wrote {output}")


_POOL = typer.Option(help="screen generated formulas: every composition of each system of 2..--max-elements of "
                           "these elements, e.g. Li,Mn,Ti,O,F")
_MAX_ELEMENTS = typer.Option(help="with --elements-pool: most elements in one composition", callback=_within(2))
_MAX_ATOMS = typer.Option(help="largest number of atoms in a candidate formula unit", callback=_within(1))
_CHARGE_BALANCED = typer.Option(help="keep only compositions pymatgen's oxidation-state guesses can balance")
_WORKERS = typer.Option(help="run on a local Dask cluster of this many worker processes (0: this process)",
                        callback=_within(0))
_SCHEDULER = typer.Option(help="run on the running Dask cluster whose scheduler is here, e.g. tcp://host:8786")


@app.command()
def predict(
    formulas: Annotated[Optional[list[str]], typer.Argument(help="chemical formulas, e.g. BaTiO3 SrSeO3")] = None,
    model: Annotated[str, typer.Option("--model", "--checkpoint", help="pretrained weight name or checkpoint path "
                                                                 "(--checkpoint is the same option)")] = DEFAULT_MODEL,
    from_file: Annotated[Optional[Path], typer.Option(help="read formulas from a file, one per line")] = None,
    output: Annotated[Optional[Path], typer.Option(help="write patterns to .csv, .json, .jsonl or .xy")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="draw the predicted pattern(s) to this PNG")] = None,
    true: Annotated[Optional[Path], typer.Option(help="structure file (CIF, POSCAR) to plot against")] = None,
    cifs: Annotated[Optional[Path], typer.Option(
        help="write each listed candidate's structure (a known one, or a template with the formula's elements "
             "substituted) as a CIF into this folder")] = None,
    threshold: Annotated[float, typer.Option(help="peak threshold (of 100)", callback=_within(0, 100))] = 10.0,
    top: Annotated[int, typer.Option(help="the K best candidates per formula (known polymorphs, then templates), "
                                          "listed with their scores; written and plotted too",
                                     callback=_within(1))] = 1,
    consensus: Annotated[Optional[int], typer.Option(
        help="template members: answer a new formula with the peaks the ranker's first K candidates agree on "
             "(higher peak F1; 1: the ranker's first; default: the member's own, 40 for the shipped default)",
        callback=_within(1))] = None,
    batch_size: int = 64,
    precision: Annotated[str, typer.Option(help="float32, or bfloat16 (faster on recent CPUs)")] = "float32",
    wavelength: Annotated[Optional[str], _WAVELENGTH] = None,
    two_theta: Annotated[Optional[str], _GRID] = None,
    axis: Annotated[str, _AXIS] = "two_theta",
    profile: Annotated[str, _PROFILE] = "gaussian",
    fwhm: Annotated[Optional[float], typer.Option(help="peak width (FWHM, degrees) of --profile")] = None,
    caglioti: Annotated[Optional[str], _CAGLIOTI] = None,
    doublet: Annotated[bool, _DOUBLET] = False,
    elements_pool: Annotated[Optional[str], _POOL] = None,
    max_elements: Annotated[int, _MAX_ELEMENTS] = 4,
    max_atoms: Annotated[int, _MAX_ATOMS] = DEFAULT_MAX_ATOMS,
    charge_balanced: Annotated[bool, _CHARGE_BALANCED] = False,
    workers: Annotated[int, _WORKERS] = 0,
    scheduler: Annotated[Optional[str], _SCHEDULER] = None,
    resume: Annotated[bool, typer.Option(help="go on with the interrupted screen into --output (its "
                                               "<output>.parts folder)")] = False,
) -> None:
    """Predict XRD patterns from formulas: peak lists, full patterns, plots; screening with --from-file or
    --elements-pool (.jsonl, .csv or .parquet; on a Dask cluster with --workers or --scheduler; --resume).

    --wavelength, --two-theta, --axis and the profile options move the predictions out of the model's frame (Cu
    K-alpha, 0..180 degrees, 1,024 bins) through d-spacing: approximate, see docs/measured.md."""
    import numpy as np

    from xrdzoo import prediction as api
    from xrdzoo.predictors import with_consensus
    from xrdzoo.xrd.frame import Frame
    from xrdzoo.xrd.pattern import Pattern

    refuse_overwrite([from_file, true], output=output, plot=plot)
    frame = Frame.of(wavelength or "CuKa", two_theta, axis, profile, fwhm, caglioti, doublet)  # options checked first
    at_least_one(batch_size, "batch_size")  # also for members that do not batch
    if from_file is not None or elements_pool is not None:
        from xrdzoo.screening import Pool, screen

        if (from_file is None) == (elements_pool is None) or formulas:
            raise typer.BadParameter("screen one input: --from-file or --elements-pool, without formulas",
                                     param_hint="--from-file")
        source = Pool(tuple(elements_pool.split(",")), max_elements, max_atoms, charge_balanced) \
            if elements_pool else from_file
        default = Path(f"{'-'.join(source.elements) if elements_pool else from_file.stem}.predicted.jsonl")
        screen(model, source, output or default, batch_size, threshold, precision, workers, scheduler, resume,
               consensus)
        return
    member = xrdzoo.load(model)
    if not formulas:
        raise typer.BadParameter("give at least one formula, or --from-file", param_hint="FORMULAS")
    if consensus is not None:
        member = with_consensus(member, consensus)
    answers = member.answer(formulas, batch_size, precision, top=top)
    if answers.refused:
        raise typer.BadParameter(next(iter(answers.refused.values())), param_hint="FORMULAS")
    if cifs is not None and all(c.cell is None for candidates in answers.ranked() for c in candidates):
        raise typer.BadParameter("no answer listed has a structure (a network answers with patterns; a template "
                                 "member answers a new formula first with the peaks its candidates agree on): list "
                                 f"the candidates with --top K, of a template member such as {DEFAULT_MODEL}",
                                 param_hint="--cifs")
    names, patterns = [], []
    for i, (formula, candidates) in enumerate(zip(formulas, answers.ranked())):
        typer.echo(api.peak_table(formula, answers.patterns[i], threshold, frame.wavelength)
                   + f"\n  answered by: {candidates[0].how}")
        if top > 1:
            _print_table([{"rank": k + 1, "score": "-" if c.score is None else f"{c.score:.2f}",
                           "space group": c.spacegroup or "-", "source": c.source or "-", "how": c.how}
                          for k, c in enumerate(candidates)], ["rank", "score", "space group", "source", "how"])
        if cifs is not None:
            written_to = api.write_structures(cifs, formula, candidates)
            without = [c.source or "the network" for c in candidates if c.cell is None]
            typer.echo(f"  structures: {len(written_to)} CIF file(s) in {cifs}"
                       + (f" (none for: {', '.join(without)})" if without else ""))
        names += [formula] if top == 1 else [f"{formula} #{k + 1} {c.source}" for k, c in enumerate(candidates)]
        patterns += [c.pattern for c in candidates[:top]]
    also = {f"{true.name} (simulated)": api.simulated_pattern(true, frame.wavelength)} if true else None
    _write_and_plot(frame, output, plot, names, frame.draw(Pattern.from_frame(np.array(patterns))), "(predicted)",
                    model, also)

# --- hub: download, cache ---------------------------------------------------------------------


@app.command()
def download(
    names: Annotated[Optional[list[str]], typer.Argument(help="weight names (xrdzoo list weights)")] = None,
    every: Annotated[bool, typer.Option("--all", help="every registered weight")] = False,
) -> None:
    """Fetch pretrained weights into the local cache (sha256-checked), e.g. to use them offline later."""
    from xrdzoo import hub

    if every == bool(names):
        raise typer.BadParameter("give weight names or --all (not both)", param_hint="NAMES")
    for name in registry.list_names("weights") if every else names:
        for part in (name, *hub.get_config(name).parts):  # a weight in several files needs them all
            typer.echo(f"{part}: {hub.download(part)}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="a checkpoint from `xrdzoo train`")],
    name: Annotated[str, typer.Option(help="weight name in arch.tag style, e.g. resnet20_onehot.mp_abc3")],
    folder: Annotated[Path, typer.Option(help="where the weight file goes")] = Path("weights"),
    manifest: Annotated[Optional[Path], typer.Option(help="manifest to add the entry to")] = None,
    dtype: Annotated[str, typer.Option(help="storage type of floating-point tensors: float16, bfloat16 or "
                                            "float32")] = "float16",
    force: Annotated[bool, typer.Option(help="replace an existing different weight file of that name")] = False,
    test_data: Annotated[Optional[Path], typer.Option(help="dataset whose test split scores the written weight "
                                                           "(its metrics)")] = None,
    data: Annotated[str, typer.Option(help="what the model was trained on")] = "",
    command: Annotated[str, typer.Option(help="the command that trained it")] = "",
    license: Annotated[str, typer.Option(help="licence of the weights")] = "",
    description: Annotated[str, typer.Option(help="one line for `xrdzoo list weights`")] = "",
) -> None:
    """Turn a checkpoint into a shippable weight file (16-bit by default) with its sha256 and manifest entry."""
    from xrdzoo.publish import export as publish

    card = {"data": data, "command": command, "license": license, "description": description}
    config = publish(checkpoint, folder, name, dtype, manifest, test_data, force, **card)
    typer.echo(f"wrote {folder / config.file} ({config.size / 2**20:.1f} MiB, sha256 {config.sha256})")


cache_app = typer.Typer(help="The local cache of downloaded weights: list, clear, dir.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("list")
def cache_list() -> None:
    """Cached weight files, their sizes, and whether their sha256 matches their weight (each file hashed now)."""
    from xrdzoo import hub

    rows = [{"file": f.path.name, "weight": f.weight or "(not registered)", "size": f"{f.size / 2**20:.1f} MiB",
             "checked": "yes" if f.checked else "no"} for f in hub.cached_files()]
    _print_table(rows, ["file", "weight", "size", "checked"])
    if not rows:
        typer.echo(f"no cached weights in {hub.cache_dir()}")


@cache_app.command("clear")
def cache_clear(
    names: Annotated[Optional[list[str]], typer.Argument(help="weight names; all cached files if omitted")] = None,
) -> None:
    """Delete cached weight files, of the named weights or all of them (asks nothing)."""
    from xrdzoo import hub

    removed = hub.clear_cache(names or None)
    for path in removed:
        typer.echo(f"removed {path}")
    if not removed:
        typer.echo(f"nothing to remove in {hub.cache_dir()}")


@cache_app.command("dir")
def cache_dir() -> None:
    """Print the folder that holds downloaded weights (set XRDZOO_HOME to move it)."""
    from xrdzoo import hub

    typer.echo(str(hub.cache_dir()))

# --- measured: compare, identify --------------------------------------------------------------------------------

_MEASURED = typer.Argument(help="measured pattern: two columns of 2-theta (degrees) and intensity (.xy, .xye, .csv, "
                                ".dat)")
_MEASURED_WAVELENGTH = typer.Option(help="the measurement's radiation: CuKa, MoKa, CoKa, FeKa, CrKa, AgKa or Angstrom")
_MODEL = typer.Option(help="predictor: pretrained weight name or checkpoint path")
_SCORE_FWHM = typer.Option("--fwhm", help="common Gaussian width (degrees) both patterns are broadened to")
_MAX_SHIFT = typer.Option(help="largest zero shift (degrees) tried either way")


def _report(ranking, plot: Optional[Path], title: str, top: int, order: Optional[list[str]] = None) -> None:
    from xrdzoo.identify import NONE_FITS
    from xrdzoo.plot import plot_ranking

    if not ranking.matches:
        raise XRDZooError(f"none of the {len(ranking.skipped)} candidate(s) could be scored"
                          + "".join(f", e.g. {reason}" for reason in list(ranking.skipped.values())[:1]))
    if ranking.skipped:
        first, reason = next(iter(ranking.skipped.items()))
        typer.echo(f"left out {len(ranking.skipped)} candidate(s) the model cannot encode or the simulator cannot "
                   f"take, e.g. {first}: {reason}", err=True)
    if ranking.matches[0].score <= 0:
        typer.echo("warning: no candidate correlates with the measurement (best score <= 0); check that the file's "
                   "columns are 2-theta and intensity and the --wavelength", err=True)
    typer.echo(ranking.table(top, order))
    if ranking.matches[0].score < NONE_FITS:
        typer.echo(f"none of these fits: the best score {ranking.matches[0].score:.3f} is below {NONE_FITS}; the phase "
                   "may be outside these candidates (more atoms, other elements, a mixture)")
    if plot:
        typer.echo(f"wrote {plot_ranking(plot, ranking, title)}")


def _write_matched(folder: Path, ranking, member, known: dict, candidates: int, top: int, name: str) -> None:
    """``identify --cifs``: the structure each of the ``top`` best answers matched as, one CIF each, named by rank."""
    from xrdzoo.identify import matched_structures
    from xrdzoo.prediction import file_label, write_cif

    written, without = 0, []
    for place, match, material, structure in matched_structures(ranking, member, known, candidates, top):
        if structure is None:
            without.append(match.formula)
            continue
        write_cif(folder / f"{place}_{match.formula}_{file_label(material)}.cif", structure,
                  [f"{match.formula}, answer {place} for {name} (score {match.score:.3f}), {match.source}",
                   "written in P1 as scored, before the zero shift and lattice strain the score fitted"], material)
        written += 1
    typer.echo(f"wrote {written} CIF file(s) of the matched structures to {folder}"
               + (f" (none for: {', '.join(without)})" if without else ""))


@app.command()
def compare(
    measured: Annotated[Path, _MEASURED],
    formulas: Annotated[list[str], typer.Argument(help="candidate formulas, e.g. BaTiO3 BaTi2O5 Ba2TiO4")],
    wavelength: Annotated[str, _MEASURED_WAVELENGTH] = "CuKa",
    model: Annotated[str, _MODEL] = DEFAULT_MODEL,
    plot: Annotated[Optional[Path], typer.Option(help="draw the measurement over the best candidates to this PNG")] = None,
    fwhm: Annotated[float, _SCORE_FWHM] = 0.5,
    max_shift: Annotated[float, _MAX_SHIFT] = 0.3,
    candidates: Annotated[int, _CANDIDATES] = DEFAULT_CANDIDATES,
) -> None:
    """Rank candidate formulas by how well their predicted patterns fit a measurement (docs/measured.md)."""
    from xrdzoo.identify import Scorer, rank
    from xrdzoo.measured import read_measurement
    from xrdzoo.xrd.profiles import wavelength as wavelength_of

    refuse_overwrite([measured], plot=plot)
    scorer, pattern = Scorer(fwhm, max_shift), read_measurement(measured, wavelength_of(wavelength))
    ranking = rank(pattern, list(dict.fromkeys(formulas)), xrdzoo.load(model), scorer=scorer, candidates=candidates)
    _report(ranking, plot, f"{measured.name}: candidates by {model}", len(ranking.matches))


@app.command()
def identify(
    measured: Annotated[Path, _MEASURED],
    elements: Annotated[Optional[str], typer.Option(help="the chemical system, e.g. Ba,Ti,O")] = None,
    elements_pool: Annotated[Optional[str], typer.Option(help="instead of --elements: every system of 2.."
                                                             "--max-elements of these elements, e.g. "
                                                             "Li,Mn,Ti,O,F,Na")] = None,
    max_elements: Annotated[int, _MAX_ELEMENTS] = 4,
    max_atoms: Annotated[int, _MAX_ATOMS] = DEFAULT_MAX_ATOMS,
    charge_balanced: Annotated[bool, _CHARGE_BALANCED] = False,
    structures: Annotated[Optional[Path], typer.Option(help="known structures (a CSV of CIFs, a folder, a pymatgen "
                                                            "JSON, as `data build` reads) to rank beside the "
                                                            "predictions")] = None,
    wavelength: Annotated[str, _MEASURED_WAVELENGTH] = "CuKa",
    model: Annotated[str, _MODEL] = DEFAULT_MODEL,
    plot: Annotated[Optional[Path], typer.Option(help="draw the measurement over the best candidates to this PNG")] = None,
    top: Annotated[int, typer.Option(help="how many candidates to print", callback=_within(1))] = 10,
    fwhm: Annotated[float, _SCORE_FWHM] = 0.5,
    max_shift: Annotated[float, _MAX_SHIFT] = 0.3,
    fractional: Annotated[Optional[float], typer.Option(help="also solid solutions between end members of one "
                                                             "element fewer, in composition steps of this, e.g. "
                                                             "0.1")] = None,
    subsystems: Annotated[bool, typer.Option(help="also the compositions of every smaller system of --elements "
                                                  "(Ti-O and Ba-O beside Ba-Ti-O) and its single elements the model "
                                                  "knows a structure of (with --all-known): a sample's impurity or "
                                                  "unreacted phases, e.g. with --phases 2")] = False,
    workers: Annotated[int, _WORKERS] = 0,
    scheduler: Annotated[Optional[str], _SCHEDULER] = None,
    candidates: Annotated[int, _CANDIDATES] = DEFAULT_CANDIDATES,
    phases: Annotated[int, typer.Option(help="explain the measurement as a sum of up to N phases (1..3), each with "
                                             "its share of the intensity (docs/measured.md)")] = 1,
    all_known: Annotated[bool, typer.Option(
        help=f"also rank every formula the model holds a structure of whose ground state lies within "
             f"{STABLE_ABOVE_HULL} eV/atom of the convex hull, whatever its size (fluorapatite, garnets; "
             "docs/measured.md)")] = ALL_KNOWN,
    shortlist: Annotated[int, typer.Option(help="faster, and less sure for polymorphs and new compounds: score every "
                                                "composition by its first candidate, then only the N best by their "
                                                "first --candidates (0: every composition by all; "
                                                "docs/measured.md)", callback=_within(0))] = 0,
    cifs: Annotated[Optional[Path], typer.Option(help="write the structure each of the --top answers matched as (a "
                                                      "known one, or a substituted template) as a CIF into this "
                                                      "folder")] = None,
) -> None:
    """Which composition of a chemical system (--elements) or of an element pool (--elements-pool, on Dask with
    --workers or --scheduler) is this measurement? Predicts every composition, ranks them."""
    from xrdzoo.answer_cache import CachedMember
    from xrdzoo.formulas import formula_of
    from xrdzoo.identify import Scorer, candidate_formulas, known_structures, rank, solid_solutions
    from xrdzoo.measured import read_measurement
    from xrdzoo.mixtures import check_phases, mixture_of
    from xrdzoo.xrd.profiles import wavelength as wavelength_of

    refuse_overwrite([measured, structures], plot=plot)
    if (elements is None) == (elements_pool is None):
        raise typer.BadParameter("give one of --elements or --elements-pool", param_hint="--elements")
    if check_phases(phases) > 1 and elements_pool:
        raise XRDZooError("--phases works with --elements (one chemical system), not --elements-pool")
    if subsystems and elements_pool:
        raise XRDZooError("--subsystems works with --elements; --elements-pool ranks every system of 2.."
                          "--max-elements of its elements already")
    if cifs is not None and elements_pool:
        raise XRDZooError("--cifs works with --elements (one chemical system), not --elements-pool")
    pattern = read_measurement(measured, wavelength_of(wavelength))
    scorer, balanced = Scorer(fwhm, max_shift), "charge-balanced " if charge_balanced else ""
    if elements_pool:
        from xrdzoo.screening import Pool
        from xrdzoo.search import known_in_pool, search

        pool = Pool(tuple(elements_pool.split(",")), max_elements, max_atoms, charge_balanced)
        known = known_in_pool(structures, pool) if structures else {}
        typer.echo(f"{balanced}compositions of {len(list(pool.systems()))} systems of {'-'.join(pool.elements)} "
                   f"with at most {max_elements} elements and {max_atoms} atoms"
                   + (f", {len(known)} known structures from {structures.name}" if structures else ""), err=True)
        ranking = search(pattern, pool, model, known, scorer, workers, scheduler, max(top, 10), progress=True,
                         all_known=all_known)
        _report(ranking, plot, f"{measured.name}: pool {'-'.join(pool.elements)} by {model}", top)
        return
    symbols = [symbol.strip() for symbol in elements.split(",") if symbol.strip()]
    member = CachedMember(model, xrdzoo.load)  # the candidates' answers of a system are remembered for its next measurement
    formulas = candidate_formulas(symbols, max_atoms, charge_balanced, member if all_known else None,
                                  subsystems=subsystems)
    beyond = sum(sum(formula_of(f).counts) > max_atoms for f in formulas) if all_known else 0  # the known ones
    if fractional is not None:
        formulas += solid_solutions(symbols, fractional, max_atoms, charge_balanced)
    known = known_structures(structures, symbols, subsystems) if structures else {}
    typer.echo(f"{len(formulas)} {balanced}compositions of {'-'.join(sorted(symbols))}"
               f"{' and its subsystems' if subsystems else ''} with at most {max_atoms} atoms"
               + (f" or known to {model} ({beyond} larger)" if beyond else "")
               + (f", {len(known)} known structures from {structures.name}" if structures else ""), err=True)
    ranking = rank(pattern, formulas, member, known, scorer, progress=True, candidates=candidates,
                   shortlist=shortlist or None)
    _report(ranking, plot, f"{measured.name}: {'-'.join(sorted(symbols))} by {model}", top, symbols)
    if cifs is not None:
        _write_matched(cifs, ranking, member.member, known, candidates, top, measured.name)
    if phases > 1:
        typer.echo(mixture_of(ranking, pattern, formulas, member, known, phases, scorer, candidates,
                              shortlist or None).table(symbols))
