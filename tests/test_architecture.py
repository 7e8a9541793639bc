"""The layers of xrdzoo, as docs/architecture.md draws them: a module imports only from its own layer or below."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xrdzoo"

# Bottom to top; a module not listed here fails the test, so every new module gets a place on purpose.
LAYERS = [
    ("foundation", {"xrdzoo.version", "xrdzoo.errors", "xrdzoo.files", "xrdzoo.formulas"}),
    ("xrd", {"xrdzoo.xrd", "xrdzoo.xrd.pattern", "xrdzoo.xrd.peaks", "xrdzoo.xrd.simulate", "xrdzoo.xrd.kernel", "xrdzoo.xrd.profiles",
             "xrdzoo.xrd.frame", "xrdzoo.contracts"}),
    ("components", {"xrdzoo.registry", "xrdzoo.buffers", "xrdzoo.arrays", "xrdzoo.encoders", "xrdzoo.losses", "xrdzoo.metrics", "xrdzoo.dtw",
                    "xrdzoo.backbones",
                    "xrdzoo.backbones.baselines", "xrdzoo.backbones.mlp", "xrdzoo.backbones.resnet",
                    "xrdzoo.backbones.timm"}),
    ("members", {"xrdzoo.model", "xrdzoo.builder", "xrdzoo.checkpoint", "xrdzoo.data", "xrdzoo.predictors",
                 "xrdzoo.predictors.chemistry", "xrdzoo.predictors.consensus", "xrdzoo.predictors.index_kernel",
                 "xrdzoo.predictors.retrieval", "xrdzoo.predictors.template", "xrdzoo.predictors.solid_solution",
                 "xrdzoo.predictors.elements"}),
    ("workflows", {"xrdzoo.train", "xrdzoo.evaluate", "xrdzoo.hub", "xrdzoo.engine"}),
    ("products", {"xrdzoo.publish", "xrdzoo.prediction", "xrdzoo.plot", "xrdzoo.measured", "xrdzoo.identify",
                  "xrdzoo.screening", "xrdzoo.search", "xrdzoo.mixtures", "xrdzoo.answer_cache"}),
    ("interfaces", {"xrdzoo", "xrdzoo.cli", "xrdzoo.__main__"}),
]
LAYER = {module: rank for rank, (_, modules) in enumerate(LAYERS) for module in modules}


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` names, a relative one (``from .pattern import x``) resolved against ``module``."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> set[str]:
    """The xrdzoo modules ``module`` imports at run time, at the top or inside functions (``from xrdzoo import x``
    is x; relative imports resolved; ``importlib.import_module("xrdzoo...")`` with a literal name counts too);
    imports under ``if TYPE_CHECKING:`` are for type checkers only and do not count."""
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(block)}
    modules = _modules()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "xrdzoo"}
        elif isinstance(node, ast.ImportFrom) and _absolute(module, path, node).split(".")[0] == "xrdzoo":
            name = _absolute(module, path, node)
            found |= ({f"{name}.{a.name}" for a in node.names} & modules.keys()) or {name}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == \
                "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).split(".")[0] == "xrdzoo":
            found.add(node.args[0].value)
    return found - {module}


def test_every_module_has_a_layer():
    assert sorted(set(_modules()) - LAYER.keys()) == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [f"{module} ({LAYERS[LAYER[module]][0]}) imports {other} ({LAYERS[LAYER[other]][0]})"
              for module, path in _modules().items() if module in LAYER
              for other in sorted(_imports(module, path)) if LAYER.get(other, -1) > LAYER[module]]
    assert upward == []


def test_relative_and_importlib_imports_are_seen(tmp_path):
    """A relative import and ``importlib.import_module("xrdzoo.cli")`` count as imports like any other."""
    source = tmp_path / "pattern.py"
    source.write_text("import importlib\nfrom ..cli import app\nfrom . import peaks\n"
                      "importlib.import_module('xrdzoo.hub')\nif TYPE_CHECKING:\n    from ..data import Dataset\n")
    assert _imports("xrdzoo.xrd.pattern", source) == {"xrdzoo.cli", "xrdzoo.xrd.peaks", "xrdzoo.hub"}


def test_benchmarks_import_names_that_exist():
    """A benchmark imports inside its functions too, where running it is the only other check: every name it imports
    from xrdzoo must be there (a refactor that moves one breaks the benchmark here, not hours into a rerun)."""
    import importlib

    missing = []
    for script in sorted((PACKAGE.parent / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "xrdzoo":
                module = importlib.import_module(node.module)
                missing += [f"{script.name}: {node.module}.{alias.name}" for alias in node.names
                            if not hasattr(module, alias.name)
                            and importlib.util.find_spec(f"{node.module}.{alias.name}") is None]
    assert not missing, missing

