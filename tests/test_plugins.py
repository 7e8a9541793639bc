"""Third-party plugins, installed the way a user would (pip, entry points) and used from outside.

``plugins/xrdzoo-example`` and ``plugins/xrdzoo-broken`` are pip-installed into temporary folders (never the
project's venv); xrdzoo then runs in subprocesses with ``PYTHONPATH`` pointing there, so the plugins are found
from their ``.dist-info`` exactly as after a real ``pip install``. The example's components are also unit-tested
in-process, through the registry.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from xrdzoo import DEFAULT_MODEL, checkpoint, registry

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
BUILTIN_MODULES = ("xrdzoo.encoders", "xrdzoo.backbones.resnet", "xrdzoo.backbones.timm", "xrdzoo.backbones.mlp",
                   "xrdzoo.backbones.baselines", "xrdzoo.losses", "xrdzoo.metrics", "xrdzoo.hub")
EXAMPLE_COMPONENTS = {"element_counts": "encoders", "conv1d": "backbones", "huber": "losses",
                      "peak_position_error": "metrics", "type_mean": "predictors"}


def needs(*modules: str) -> None:
    """Skip until the built-in modules a test uses, and theirs, exist (they are written alongside these tests)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if not (error.name or "").startswith("xrdzoo"):
                raise
            pytest.skip(f"built-in module {error.name} does not exist yet")


def _install(tmp_path_factory, package: str) -> Path:
    """``pip install --no-deps --target`` a copy of ``plugins/<package>``; returns the target folder."""
    source = shutil.copytree(PLUGINS / package, tmp_path_factory.mktemp("src") / package,
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp(package)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                   check=True, capture_output=True)
    return target


@pytest.fixture(scope="session")
def example_site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory, "xrdzoo-example")


@pytest.fixture(scope="session")
def broken_site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory, "xrdzoo-broken")


def run(args: list[str], sites: list[Path], **env: str) -> subprocess.CompletedProcess:
    """``python <args>`` in a fresh process that sees the plugins installed in ``sites``."""
    environment = {k: v for k, v in os.environ.items() if k not in (registry.RAISE_ENV, "XRDZOO_DEBUG")}
    environment.update(PYTHONPATH=os.pathsep.join(map(str, sites)), **env)
    return subprocess.run([sys.executable, *args], env=environment, capture_output=True, text=True, timeout=300)


def xrdzoo(*args: str, sites: list[Path], **env: str) -> subprocess.CompletedProcess:
    return run(["-m", "xrdzoo", *args], sites, **env)


def python(code: str, sites: list[Path], *args: str, **env: str) -> dict:
    """Run ``code`` with ``args`` (it prints one JSON object as its last line) and return that object."""
    proc = run(["-c", code, *args], sites, **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the example plugin, in-process through the registry -------------------------------------------------------


@pytest.fixture
def example(example_site, monkeypatch):
    """The example plugin importable and registered in this process."""
    needs("xrdzoo.encoders")
    monkeypatch.syspath_prepend(str(example_site))
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


def test_example_components_come_from_the_example_package(example):
    for name, kind in EXAMPLE_COMPONENTS.items():
        entry, _ = registry.find(kind, name)
        assert (entry.package, entry.version) == ("xrdzoo-example", "0.1.0")
        assert entry.target.startswith(f"xrdzoo_example.{kind}:")
        assert registry.describe(entry) and not registry.describe(entry).startswith("(failed")


def test_element_counts_encodes_shares(example):
    from xrdzoo.encoders import EncodingError

    encoder = registry.create("encoders", "element_counts")
    assert encoder.shape == (103,) and encoder.elements[:3] == ["H", "He", "Li"] and encoder.elements[-1] == "Lr"
    x = encoder.encode(["BaTiO3", "Fe3(OF2)2", "NaCl"])
    assert x.shape == (3, 103) and x.dtype == torch.float32
    assert torch.allclose(x.sum(dim=1), torch.ones(3))
    col = {e: i for i, e in enumerate(encoder.elements)}
    assert x[0, col["O"]].item() == pytest.approx(3 / 5) and x[0, col["Ba"]].item() == pytest.approx(1 / 5)
    assert x[1, col["F"]].item() == pytest.approx(4 / 9) and x[1, col["Fe"]].item() == pytest.approx(3 / 9)
    assert torch.equal(encoder.encode(["BaTiO3"])[0], encoder.encode(["Ba2Ti2O6"])[0])
    assert encoder.encode([]).shape == (0, 103)
    with pytest.raises(EncodingError):
        encoder.encode(["Ba(TiO3"])


def test_element_counts_vocabulary_and_config_round_trip(example):
    small = registry.create("encoders", "element_counts", elements=["O", "Ti", "Ba"])
    assert small.shape == (3,)
    assert torch.allclose(small.encode(["BaTiO3"]), torch.tensor([[0.6, 0.2, 0.2]]))
    rebuilt = registry.create("encoders", "element_counts", **json.loads(json.dumps(small.config())))
    assert rebuilt.elements == small.elements and torch.equal(rebuilt.encode(["TiO2"]), small.encode(["TiO2"]))
    factory = registry.get("encoders", "element_counts")
    for bad in (["O", "Xx"], ["O", "O"], []):
        with pytest.raises(ValueError, match="element_counts: elements"):
            factory(elements=bad)


@pytest.mark.parametrize("formula, reason", [
    ("OgO2", r"Og not in the encoder's 103 elements"),
    ("", "not a chemical formula"),
    ("Ba(TiO3", "not a chemical formula"),
    ("Na-1Cl", "not a chemical formula"),
    ("O0", "count 0 after 'O' is zero"),
    ("SrTiO3", "Sr not in the encoder's 3 elements"),
])
def test_element_counts_errors_name_the_formula_and_reason(example, formula, reason):
    from xrdzoo.encoders import EncodingError

    encoder = registry.create("encoders", "element_counts",
                              **({"elements": ["Ba", "Ti", "O"]} if formula == "SrTiO3" else {}))
    with pytest.raises(EncodingError, match=reason) as info:
        encoder.encode(["BaTiO3", formula])
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert str(info.value).startswith(f"cannot encode {formula!r}")


@pytest.mark.parametrize("input_shape, out_dim", [((103,), 1024), ((1, 10, 84), 1024), ((2, 3), 1000), ((1,), 7)])
def test_conv1d_takes_any_input_shape(example, input_shape, out_dim):
    torch.manual_seed(0)
    net = registry.create("backbones", "conv1d", input_shape, out_dim=out_dim, channels=8)
    inputs = torch.randn(3, *input_shape)
    out = net(inputs)
    assert out.shape == (3, out_dim)
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_conv1d_rejects_bad_options(example):
    factory = registry.get("backbones", "conv1d")
    with pytest.raises(ValueError, match="kernel_size odd"):
        factory((10,), kernel_size=4)
    with pytest.raises(ValueError, match="must be positive"):
        factory((0,))
    with pytest.raises(registry.PluginError, match="cannot build backbone 'conv1d' with options"):
        registry.create("backbones", "conv1d", (10,), colour="red")


def test_huber_is_quadratic_then_linear(example):
    loss = registry.create("losses", "huber", delta=0.1)
    true = torch.rand(2, 1024)
    small, large = 0.05, 0.3
    assert loss(true, true).item() == 0.0
    assert loss(true + small, true).item() == pytest.approx(0.5 * small**2, rel=1e-4)
    assert loss(true + large, true).item() == pytest.approx(0.1 * (large - 0.5 * 0.1), rel=1e-4)
    with pytest.raises(ValueError, match="delta must be positive"):
        registry.get("losses", "huber")(delta=0)


def _pattern(*peaks: tuple[int, float], points: int = 1024) -> np.ndarray:
    """A pattern with triangular peaks of the given heights at the given bins."""
    pattern = np.zeros(points)
    for centre, height in peaks:
        for offset in range(-2, 3):
            pattern[centre + offset] = max(pattern[centre + offset], height * (1 - abs(offset) / 3))
    return pattern


def test_peak_position_error(example):
    metric = registry.get("metrics", "peak_position_error")
    bin_width = 180 / 1024
    true = _pattern((100, 100.0), (500, 40.0), (900, 5.0))  # the 5.0 peak is below the threshold
    cases = {
        "exact": (true, 0.0),
        "shifted": (_pattern((103, 100.0), (497, 60.0)), 3 * bin_width),
        "one missing": (_pattern((100, 100.0)), 5.0 / 2),  # the missing peak counts as the 5-degree window
        "empty": (np.zeros(1024), 5.0),
        "far": (_pattern((50, 100.0), (800, 100.0)), 5.0),  # further than the window: capped
    }
    pred = np.stack([p for p, _ in cases.values()])
    errors = metric(pred, np.stack([true] * len(cases)))
    assert errors.shape == (len(cases),)
    assert errors == pytest.approx([e for _, e in cases.values()])
    assert metric(true[None], np.zeros((1, 1024)))[0] == 0.0  # no true peaks: nothing to miss
    assert metric(pred, np.stack([true] * len(cases)), window=1.0)[3] == 1.0
    with pytest.raises(ValueError, match="one shape"):
        metric(pred, true)


# --- the example plugin from outside: the CLI and the Python API in a fresh process ------------------------------


def test_list_shows_example_components_beside_builtins(example_site):
    proc = xrdzoo("list", sites=[example_site])
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0] + " " + line.split()[1]: line.split() for line in proc.stdout.splitlines()[1:] if line}
    for name, kind in EXAMPLE_COMPONENTS.items():
        assert lines[f"{name} {kind}"][2:4] == ["xrdzoo-example", "0.1.0"]
    assert lines["onehot encoders"][2] == "xrdzoo" and lines["mse losses"][2] == "xrdzoo"


def test_list_json_parses(example_site):
    proc = xrdzoo("list", "--json", sites=[example_site])
    assert proc.returncode == 0, proc.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(proc.stdout)}
    for name, kind in EXAMPLE_COMPONENTS.items():
        assert (rows[kind, name]["package"], rows[kind, name]["version"]) == ("xrdzoo-example", "0.1.0")
    assert rows["backbones", "conv1d"]["description"].startswith("1-D conv decoder")
    assert rows["encoders", "onehot"]["package"] == "xrdzoo"


@pytest.mark.parametrize("singular", ["encoder", "backbone", "predictor", "loss", "metric", "weight"])
def test_list_takes_a_kind_in_the_singular_too(singular):
    from typer.testing import CliRunner

    from xrdzoo.cli import app

    result = CliRunner().invoke(app, ["list", singular, "--json"])
    assert result.exit_code == 0, result.output
    assert {row["kind"] for row in json.loads(result.stdout)} <= {singular + ("es" if singular == "loss" else "s")}


EXAMPLE_ONLY = """
import json, sys
import numpy as np, torch, xrdzoo
from xrdzoo import DEFAULT_MODEL, checkpoint, registry
torch.manual_seed(0)
model = xrdzoo.create_model("element_counts", "conv1d", encoder_options={"elements": ["Ba", "Sr", "Ti", "O"]},
                            channels=8)
patterns = model.predict(["BaTiO3", "SrTiO3"])
path = checkpoint.save(sys.argv[1], model)
again = checkpoint.read_model(path).predict(["BaTiO3", "SrTiO3"])
true = torch.rand(2, 1024)
print(json.dumps({
    "shape": patterns.shape, "max": patterns.max(axis=1).tolist(),
    "same_after_load": bool(np.array_equal(patterns, again)),
    "packages": model.config["packages"], "encoder_options": model.config["encoder_options"],
    "huber": registry.create("losses", "huber")(torch.from_numpy(patterns) / 100, true).item(),
    "metric": registry.get("metrics", "peak_position_error")(patterns, patterns).tolist(),
}))
"""


@pytest.fixture(scope="module")
def example_checkpoint(example_site, tmp_path_factory) -> tuple[Path, dict]:
    """A checkpoint of an example-plugin model saved in a fresh process, and what that process saw."""
    needs("xrdzoo.encoders")
    path = tmp_path_factory.mktemp("checkpoint") / "example.safetensors"
    return path, python(EXAMPLE_ONLY, [example_site], str(path))


def test_example_model_saves_and_loads_in_a_fresh_process(example_checkpoint):
    _, out = example_checkpoint
    assert out["shape"] == [2, 1024] and out["max"] == pytest.approx([100, 100]) and out["same_after_load"]
    assert out["packages"] == {"encoders": "xrdzoo-example 0.1.0", "backbones": "xrdzoo-example 0.1.0"}
    assert out["encoder_options"] == {"elements": ["Ba", "Sr", "Ti", "O"]}
    assert out["huber"] > 0 and out["metric"] == [0.0, 0.0]


def test_cli_predicts_with_a_plugin_checkpoint_only_where_the_plugin_is(example_site, example_checkpoint):
    needs("xrdzoo.hub", "xrdzoo.prediction")
    path, _ = example_checkpoint
    predicted = xrdzoo("predict", "BaTiO3", "--checkpoint", str(path), sites=[example_site])
    assert predicted.returncode == 0 and "BaTiO3" in predicted.stdout, predicted.stderr
    without_plugin = xrdzoo("predict", "BaTiO3", "--checkpoint", str(path), sites=[])
    assert without_plugin.returncode == 1
    assert without_plugin.stderr.strip().splitlines()[-1].endswith("made with xrdzoo-example 0.1.0: install those "
                                                                    "packages")
    assert "no encoder named 'element_counts'" in without_plugin.stderr and "Traceback" not in without_plugin.stderr


WITH_BUILTINS = """
import json
import torch, xrdzoo
from xrdzoo import registry
torch.manual_seed(0)
model = xrdzoo.create_model("element_counts", "resnet20")
inputs = model.encoder.encode(["BaTiO3", "NaCl", "MgAl2O4"])
other = xrdzoo.create_model("onehot", "conv1d")
true = torch.rand(3, 1024)
print(json.dumps({
    "resnet20": [list(inputs.shape), list(model(inputs).shape)],
    "conv1d": [list(other.encoder.shape), list(other.predict(["BaTiO3", "NaCl", "MgAl2O4"]).shape)],
    "packages": [model.config["packages"], other.config["packages"]],
    "huber_vs_mse": [registry.create("losses", "huber")(true, true).item(), registry.create("losses", "mse")(true, true).item()],
}))
"""


def test_example_components_mix_with_builtins(example_site):
    needs("xrdzoo.encoders", "xrdzoo.backbones.resnet", "xrdzoo.losses")
    out = python(WITH_BUILTINS, [example_site])
    assert out["resnet20"] == [[3, 103], [3, 1024]]
    assert out["conv1d"][1] == [3, 1024] and len(out["conv1d"][0]) > 1  # onehot is a matrix, conv1d flattens it
    assert out["packages"][0]["backbones"].startswith("xrdzoo ") and out["packages"][1]["encoders"].startswith("xrdzoo ")
    assert out["huber_vs_mse"] == [0.0, 0.0]


@pytest.mark.slow
def test_train_with_example_components(example_site, request, tmp_path):
    needs("xrdzoo.encoders", "xrdzoo.data")
    tiny_dataset = request.getfixturevalue("tiny_dataset")
    run_dir = tmp_path / "run"
    proc = xrdzoo("train", "--data", str(tiny_dataset), "--encoder", "element_counts", "--backbone", "conv1d",
                  "--loss", "huber", "--epochs", "2", "--batch-size", "8", "--backbone-option", "channels=8",
                  "--output", str(run_dir), sites=[example_site])
    assert proc.returncode == 0, proc.stderr
    best = run_dir / "best.safetensors"
    assert best.is_file() and str(best) in proc.stdout
    assert len(json.loads((run_dir / "history.json").read_text())) == 2


def test_type_mean_meets_the_predictor_contract(example, tiny_dataset, tmp_path):
    from xrdzoo import contracts
    from xrdzoo.data import load_dataset
    from xrdzoo.builder import create_predictor

    member = create_predictor("type_mean")
    assert isinstance(member, contracts.FittedPredictor)
    with pytest.raises(RuntimeError, match="xrdzoo train --predictor type_mean"):
        member.predict(["BaTiO3"])
    data = load_dataset(tiny_dataset)
    assert member.fit(data.select("train")) == {"formula_types": len({_type(f) for f in data.select("train").formulas})}
    answers = member.answer(["SrZrO3", "Qq2O", "Fe2O3"])
    assert answers.kept == [0, 2] and "Qq" in answers.refused["Qq2O"]
    assert answers.how[0].startswith("mean of ") and answers.how[1].startswith("type 2,3 unseen")
    assert np.allclose(answers.patterns.intensities.max(axis=1), 100)
    again = checkpoint.read_model(checkpoint.save(tmp_path / "type_mean.safetensors", member))
    assert np.array_equal(again.predict(["SrZrO3", "Fe2O3"]), answers.patterns.intensities)


def _type(formula: str) -> tuple:
    from xrdzoo.formulas import formula_of

    return formula_of(formula).kind


@pytest.mark.slow
def test_train_and_predict_with_the_example_predictor(example_site, tiny_dataset, tmp_path):
    proc = xrdzoo("train", "--data", str(tiny_dataset), "--predictor", "type_mean", "--output", str(tmp_path / "run"),
                  sites=[example_site])
    assert proc.returncode == 0 and "type_mean: validation peak F1" in proc.stdout, proc.stderr
    proc = xrdzoo("predict", "SrZrO3", "--checkpoint", str(tmp_path / "run" / "best.safetensors"),
                  sites=[example_site])
    assert proc.returncode == 0 and "answered by: mean of " in proc.stdout, proc.stderr


# --- a broken plugin next to the example: the rest keeps working ----------------------------------------------


def test_list_survives_a_broken_plugin(example_site, broken_site):
    proc = xrdzoo("list", sites=[example_site, broken_site])
    assert proc.returncode == 0, proc.stderr
    assert "element_counts" in proc.stdout and "onehot" in proc.stdout and "explodes" in proc.stdout
    assert "plugin(s) failed to load; see `xrdzoo list --errors`" in proc.stderr
    mse = [line.split()[2] for line in proc.stdout.splitlines() if line.split()[:2] == ["mse", "losses"]]
    assert sorted(mse) == ["xrdzoo", "xrdzoo-broken"]


def test_list_errors_reports_package_and_error(example_site, broken_site):
    needs("xrdzoo.encoders")  # the example's encoder imports its EncodingError
    proc = xrdzoo("list", "--errors", sites=[example_site, broken_site])
    assert proc.returncode == 0, proc.stderr
    failed = proc.stdout.split("plugin(s) failed to load:")[1]
    [line] = [line for line in failed.splitlines() if line.startswith("missing_dep")]
    assert line.split()[1:3] == ["encoders", "xrdzoo-broken"]
    assert "ModuleNotFoundError: No module named 'xrdzoo_broken_missing_dependency'" in line
    assert "xrdzoo-example" not in failed


ERRORS = """
import json
import torch, xrdzoo
from xrdzoo import registry

def error(call):
    try:
        call()
    except registry.PluginError as e:
        return str(e)
"""

BROKEN = ERRORS + """
model = xrdzoo.create_model("element_counts", "conv1d", channels=8)
print(json.dumps({
    "healthy": list(model.predict(["BaTiO3"]).shape),
    "import": error(lambda: xrdzoo.create_model("missing_dep", "conv1d")),
    "build": error(lambda: xrdzoo.create_model("element_counts", "explodes")),
    "clash": error(lambda: registry.create("losses", "mse")),
    "picked": [type(registry.create("losses", name)).__module__ for name in ("xrdzoo:mse", "xrdzoo-broken:mse")],
    "failures": sorted([f.name, f.package] for f in registry.failures()),
}))
"""


def test_broken_components_fail_alone_with_one_line_errors(example_site, broken_site):
    needs("xrdzoo.encoders", "xrdzoo.losses")
    out = python(BROKEN, [example_site, broken_site])
    assert out["healthy"] == [1, 1024]
    for key, cause in (("import", "ModuleNotFoundError"), ("build", "RuntimeError: this backbone always fails")):
        assert "\n" not in out[key] and "from package 'xrdzoo-broken' failed: " + cause in out[key]
    assert "registered by both xrdzoo and xrdzoo-broken" in out["clash"]
    assert "'xrdzoo:mse' or 'xrdzoo-broken:mse'" in out["clash"]
    assert out["picked"] == ["xrdzoo.losses", "xrdzoo_broken.components"]
    assert out["failures"] == [["explodes", "xrdzoo-broken"], ["missing_dep", "xrdzoo-broken"]]


RAISE = """
import json, xrdzoo
try:
    xrdzoo.create_model("missing_dep", "conv1d")
except Exception as error:
    print(json.dumps([type(error).__name__, str(error)]))
"""


def test_raise_plugin_errors_gives_the_original_exception(example_site, broken_site):
    needs(*BUILTIN_MODULES)  # with the variable set, any failing built-in would be raised first
    sites = [example_site, broken_site]
    assert python(RAISE, sites, XRDZOO_RAISE_PLUGIN_ERRORS="1") == \
        ["ModuleNotFoundError", "No module named 'xrdzoo_broken_missing_dependency'"]
    proc = xrdzoo("list", sites=sites, XRDZOO_RAISE_PLUGIN_ERRORS="1")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        "ModuleNotFoundError: No module named 'xrdzoo_broken_missing_dependency'"


def test_cli_names_the_broken_plugin_in_one_line(example_site, broken_site, request, tmp_path):
    needs("xrdzoo.data")
    tiny_dataset = request.getfixturevalue("tiny_dataset")
    proc = xrdzoo("train", "--data", str(tiny_dataset), "--encoder", "missing_dep", "--backbone", "conv1d",
                  "--output", str(tmp_path), sites=[example_site, broken_site])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "encoder 'missing_dep' from package 'xrdzoo-broken' failed: ModuleNotFoundError" in proc.stderr


# --- what a plugin hands back is checked at the registry boundary -------------------------------------------------


def test_list_contains_exits_interrupts_and_wrong_returns(broken_site):
    proc = xrdzoo("list", "--errors", "--json", sites=[broken_site])
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    errors = {(f["kind"], f["name"]): f["error"] for f in listed["errors"]}
    assert errors["encoders", "exits"] == "SystemExit: 3"
    assert errors["losses", "interrupts"] == "KeyboardInterrupt: raised by xrdzoo_broken.interrupts at import"
    assert errors["metrics", "not_callable"] == "ContractError: the entry point names a int, not a factory or function"
    assert errors["weights", "dicts"] == "ContractError: the provider returned a dict, not a WeightConfig"
    assert errors["weights", "exits"] == "SystemExit: exiting_weights gives up"
    weights = {row["name"] for row in listed["components"] if row["kind"] == "weights"}
    assert DEFAULT_MODEL in weights and "dicts.broken" not in weights


def test_predict_with_the_default_model_works_beside_broken_providers(broken_site):
    proc = xrdzoo("predict", "NaCl", sites=[broken_site])
    assert proc.returncode == 0 and "NaCl: predicted peaks" in proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr


WRONG_RETURNS = ERRORS + """
print(json.dumps({
    "encoder": error(lambda: xrdzoo.create_model("not_an_encoder", "mlp")),
    "exits": error(lambda: xrdzoo.create_model("exits", "mlp")),
    "metric": error(lambda: registry.get("metrics", "not_callable")),
    "healthy": list(xrdzoo.create_model("onehot", "mlp", hidden=[8]).predict(["NaCl"]).shape),
}))
"""


def test_wrong_returns_fail_alone_with_one_line_errors(broken_site):
    out = python(WRONG_RETURNS, [broken_site])
    assert out["encoder"] == ("encoder 'not_an_encoder' from package 'xrdzoo-broken' failed: ContractError: the "
                              "factory returned a str, not an encoder (shape, encode, config)")
    assert out["exits"] == "encoder 'exits' from package 'xrdzoo-broken' failed: SystemExit: 3"
    assert out["metric"].startswith("metric 'not_callable' from package 'xrdzoo-broken' failed: ContractError")
    assert out["healthy"] == [1, 1024]


def test_a_real_ctrl_c_during_a_plugin_import_still_interrupts():
    def pressed():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the signal arrives first

    # Python's own handler, as in a foreground program (a background `make test` starts with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            registry._plugin_call("encoders", "slow", "some-plugin", pressed)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ("encoders", "slow", "some-plugin") not in {(f.kind, f.name, f.package) for f in registry.failures()}


def test_a_plugins_own_keyboard_interrupt_is_its_failure():
    def raises():
        raise KeyboardInterrupt("not pressed")

    with pytest.raises(registry.PluginError, match="failed: KeyboardInterrupt: not pressed"):
        registry._plugin_call("encoders", "own", "some-plugin", raises)
    registry.refresh()
