"""The layers of xrdzoo, as docs/architecture.md draws them: a module imports only from its own layer or below."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xrdzoo"

# Bottom to top; a module not listed here fails the test, so every new module gets a place on purpose.
LAYERS = [
    ("foundation", {"xrdzoo.version", "xrdzoo.errors", "xrdzoo.contracts", "xrdzoo.files"}),
    ("xrd", {"xrdzoo.xrd", "xrdzoo.xrd.pattern", "xrdzoo.xrd.peaks", "xrdzoo.xrd.simulate", "xrdzoo.xrd.profiles"}),
    ("components", {"xrdzoo.registry", "xrdzoo.buffers", "xrdzoo.encoders", "xrdzoo.losses", "xrdzoo.metrics", "xrdzoo.backbones",
                    "xrdzoo.backbones.baselines", "xrdzoo.backbones.mlp", "xrdzoo.backbones.resnet",
                    "xrdzoo.backbones.timm"}),
    ("members", {"xrdzoo.model", "xrdzoo.checkpoint", "xrdzoo.data", "xrdzoo.predictors",
                 "xrdzoo.predictors.chemistry", "xrdzoo.predictors.retrieval", "xrdzoo.predictors.template",
                 "xrdzoo.predictors.solid_solution"}),
    ("workflows", {"xrdzoo.train", "xrdzoo.evaluate", "xrdzoo.hub", "xrdzoo.engine"}),
    ("products", {"xrdzoo.publish", "xrdzoo.prediction", "xrdzoo.plot", "xrdzoo.measured", "xrdzoo.identify",
                  "xrdzoo.screening", "xrdzoo.search", "xrdzoo.mixtures", "xrdzoo.answer_cache"}),
    ("interfaces", {"xrdzoo", "xrdzoo.cli", "xrdzoo.__main__"}),
]
LAYER = {module: rank for rank, (_, modules) in enumerate(LAYERS) for module in modules}


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def _imports(module: str, path: Path) -> set[str]:
    """The xrdzoo modules ``module`` imports at run time, at the top or inside functions (``from xrdzoo import x``
    is x); imports under ``if TYPE_CHECKING:`` are for type checkers only and do not count."""
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "xrdzoo"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "xrdzoo":
            modules = _modules()
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            found |= subs or {node.module}
    return found - {module}


def test_every_module_has_a_layer():
    assert sorted(set(_modules()) - LAYER.keys()) == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [f"{module} ({LAYERS[LAYER[module]][0]}) imports {other} ({LAYERS[LAYER[other]][0]})"
              for module, path in _modules().items() if module in LAYER
              for other in sorted(_imports(module, path)) if LAYER.get(other, -1) > LAYER[module]]
    assert upward == []
