"""The plugin registry in-process: fake plugin distributions on disk, found through real entry-point metadata."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import PathDistribution
from pathlib import Path

import pytest

from xrdzoo import registry
from xrdzoo.registry import PluginError

COMPONENTS = '''
"""Components for the registry tests."""

import json


class Thing:
    """A component that keeps how it was built."""

    def __init__(self, *args, **options):
        self.args, self.options = args, options

    def __call__(self, *inputs):  # callable, as backbones and losses are
        return inputs


def family(input_shape, out_dim=1024, variant="base"):
    """A backbone family whose variants are picked as family/variant."""
    return Thing(input_shape, out_dim=out_dim, variant=variant)


def buggy(size=1):
    """A factory with a bug: a TypeError of its own, whatever the options."""
    return len(size)


def strict(size=1):
    """A factory that checks its options, with a summary
    that wraps.

    Details after the summary are not part of it.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    return Thing(size=size)


def explode(**options):
    """A factory that fails when called."""
    raise RuntimeError("boom while building")


def weight(name, metrics=None):
    from xrdzoo.hub import WeightConfig

    return WeightConfig(name, "0" * 64, description=f"weights {name}", metrics=metrics or {})


def weights():
    return [weight("alpha.v1", {"peak_f1": 0.4321}), weight("beta.v1")]


def broken_weights():
    raise OSError("manifest missing")
'''


class FakePlugins:
    """Writes plugin distributions (``.dist-info`` metadata and modules) into a folder on ``sys.path``."""

    def __init__(self, root: Path):
        self.root, self.dists, self.modules = root, [], set()

    def add(self, package: str, version: str = "1.0", modules: dict[str, str] | None = None,
            **groups: dict[str, str]) -> None:
        """A distribution ``package`` whose entry points are ``{kind: {name: "module:attr"}}`` keyword args."""
        info = self.root / f"{package.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text("".join(
            f"[xrdzoo.{kind}]\n" + "".join(f"{name} = {target}\n" for name, target in names.items())
            for kind, names in groups.items()))
        for module, source in (modules or {}).items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.add(module)
        self.dists.append(PathDistribution(info))
        registry.refresh()

    def entry_points(self, group: str) -> list:
        return [ep for dist in self.dists for ep in dist.entry_points if ep.group == group]


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Only the fake plugins are registered (built-ins hidden); everything is forgotten afterwards."""
    fake = FakePlugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "entry_points", fake.entry_points)
    monkeypatch.delenv(registry.RAISE_ENV, raising=False)
    registry.refresh()
    yield fake
    for module in fake.modules:
        sys.modules.pop(module, None)
    monkeypatch.undo()
    registry.refresh()


@pytest.fixture
def components(plugins):
    """One healthy package, ``pkg-a``, with a module of components: ``comp:Thing`` etc."""
    plugins.add("pkg-a", "2.3", modules={"comp": COMPONENTS},
                losses={"huber": "comp:Thing", "mse": "comp:Thing", "explodes": "comp:explode", "strict": "comp:strict",
                        "buggy": "comp:buggy"},
                backbones={"fam": "comp:family"})
    return plugins


def test_names_come_from_metadata_in_natural_order_without_importing(plugins):
    names = ["resnet100", "resnet10", "resnet2", "Resnet15", "mlp"]
    plugins.add("pkg-a", backbones={n: "module_that_does_not_exist:f" for n in names})
    assert registry.list_names("backbones") == ["mlp", "resnet2", "resnet10", "Resnet15", "resnet100"]
    assert registry.failures() == [] and "module_that_does_not_exist" not in sys.modules


def test_entries_carry_package_version_and_target(components):
    entry, variant = registry.find("losses", "huber")
    assert (entry.kind, entry.name, entry.package, entry.version, entry.target) == \
        ("losses", "huber", "pkg-a", "2.3", "comp:Thing")
    assert entry.qualified_name == "pkg-a:huber" and variant is None


@pytest.mark.parametrize("pattern, expected", [
    ("*", ["a1", "a2", "a10", "b1", "bb"]),
    ("a*", ["a1", "a2", "a10"]),
    ("a?", ["a1", "a2"]),
    ("b[0-9]", ["b1"]),
    (["a1*", "bb"], ["a1", "a10", "bb"]),
    (("bb", "bb", "b1"), ["b1", "bb"]),  # each name once, in registry order
    ("z*", []),
    ([], []),
])
def test_wildcards(plugins, pattern, expected):
    plugins.add("pkg-a", metrics={n: "m:f" for n in ["a10", "bb", "a2", "b1", "a1"]})
    assert registry.list_names("metrics", pattern) == expected


def test_wildcards_are_case_sensitive(plugins):
    plugins.add("pkg-a", metrics={"Pearson": "m:f"})
    assert registry.list_names("metrics", "pearson") == []


def test_create_and_load(components):
    factory = registry.get("losses", "huber")
    built = registry.create("losses", "huber", delta=0.2)
    assert isinstance(built, factory) and built.options == {"delta": 0.2}
    assert registry.describe(registry.find("losses", "huber")[0]) == "A component that keeps how it was built."
    assert (registry.describe(registry.find("losses", "strict")[0])
            == "A factory that checks its options, with a summary that wraps.")


def test_family_variant_names(components):
    built = registry.create("backbones", "fam/large", (1, 10, 84), out_dim=512)
    assert built.args == ((1, 10, 84),) and built.options == {"out_dim": 512, "variant": "large"}
    assert registry.create("backbones", "fam", (3,)).options["variant"] == "base"
    entry, variant = registry.find("backbones", "pkg-a:fam/small")
    assert (entry.name, variant) == ("fam", "small")
    with pytest.raises(PluginError, match="has a variant; build it with create"):
        registry.get("backbones", "fam/large")


def test_unknown_name_suggests_close_matches(components):
    with pytest.raises(PluginError, match=r"'hubr'; did you mean huber\? \(see `xrdzoo list losses`"):
        registry.find("losses", "hubr")
    with pytest.raises(PluginError) as info:
        registry.create("losses", "zzzz")
    assert "did you mean" not in str(info.value) and "a plugin package may be missing" in str(info.value)
    with pytest.raises(PluginError, match="no backbone named 'nofamily/x'"):
        registry.find("backbones", "nofamily/x")
    with pytest.raises(PluginError, match="named 'pkg-b:huber'"):
        registry.find("losses", "pkg-b:huber")


@pytest.mark.parametrize("kind, singular", [("encoders", "encoder"), ("backbones", "backbone"), ("losses", "loss"),
                                            ("metrics", "metric"), ("weights", "weight")])
def test_messages_name_the_kind_in_the_singular(plugins, kind, singular):
    with pytest.raises(PluginError, match=f"^no {singular} named 'nothing'"):
        registry.find(kind, "nothing")


def test_kinds_in_the_singular_work_everywhere(components):
    assert registry.list_names("loss") == registry.list_names("losses")
    assert registry.find("loss", "huber") == registry.find("losses", "huber")
    assert registry.get("backbone", "fam") is registry.get("backbones", "fam")
    assert registry.create("backbone", "fam/large", (3,)).options["variant"] == "large"
    with pytest.raises(PluginError, match="^no loss named 'hubr'; did you mean huber"):
        registry.find("loss", "hubr")
    with pytest.raises(PluginError, match="has a variant"):
        registry.get("backbone", "fam/large")
    with pytest.raises(PluginError, match="^loss 'explodes' from package 'pkg-a' failed"):
        registry.create("loss", "explodes")
    assert [f.kind for f in registry.failures()] == ["losses"]


def test_unknown_kind(plugins):
    for call in (lambda: registry.entries("lossy"), lambda: registry.list_names("models"),
                 lambda: registry.find("layers", "x")):
        with pytest.raises(PluginError, match="unknown kind .*choose one of encoders, backbones"):
            call()


def test_name_clash_names_both_packages_and_package_prefix_picks_one(components):
    components.add("pkg-b", "0.5", modules={"other": "class MSE:\n    'Another mse.'\n"}, losses={"mse": "other:MSE"})
    assert registry.list_names("losses", "mse") == ["mse"]
    assert [e.package for e in registry.entries("losses") if e.name == "mse"] == ["pkg-a", "pkg-b"]
    with pytest.raises(PluginError) as info:
        registry.create("losses", "mse")
    message = str(info.value)
    assert "registered by both pkg-a and pkg-b" in message and "'pkg-a:mse' or 'pkg-b:mse'" in message
    assert registry.get("losses", "pkg-a:mse").__module__ == "comp"
    assert registry.get("losses", "pkg-b:mse").__module__ == "other"
    assert registry.get("losses", "pkg-b:mse") is registry.get("losses", "pkg-b:mse")  # loaded once
    assert registry.get("losses", "huber").__module__ == "comp"  # names without a clash need no prefix


def test_import_failure_is_recorded_with_package_and_others_keep_working(components):
    components.add("pkg-bad", "0.1", modules={"needs_missing": "import package_that_is_not_installed\n"},
                   encoders={"fancy": "needs_missing:Encoder"})
    with pytest.raises(PluginError) as info:
        registry.create("encoders", "fancy")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("encoder 'fancy' from package 'pkg-bad' failed: ModuleNotFoundError")
    assert "package_that_is_not_installed" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    [failure] = registry.failures()
    assert (failure.kind, failure.name, failure.package) == ("encoders", "fancy", "pkg-bad")
    assert failure.error.startswith("ModuleNotFoundError: No module named 'package_that_is_not_installed'")
    assert registry.describe(registry.find("encoders", "fancy")[0]).startswith("(failed to load")
    assert registry.create("losses", "huber").options == {}
    registry.refresh()
    assert registry.failures() == []


def test_build_failure_is_recorded(components):
    with pytest.raises(PluginError, match="'explodes' from package 'pkg-a' failed: RuntimeError: boom"):
        registry.create("losses", "explodes")
    assert [(f.name, f.error) for f in registry.failures()] == [("explodes", "RuntimeError: boom while building")]


def test_wrong_options_are_the_callers_mistake_not_a_plugin_failure(components):
    with pytest.raises(PluginError, match=r"cannot build backbone 'fam' with options \{'colour': 'red'\}"):
        registry.create("backbones", "fam", (3,), colour="red")
    assert registry.failures() == []


def test_a_type_error_inside_a_factory_is_a_plugin_failure_not_bad_options(components):
    """Options are checked against the factory's signature; a TypeError raised by its own code is its bug."""
    with pytest.raises(PluginError, match="'buggy' from package 'pkg-a' failed: TypeError") as error:
        registry.create("losses", "buggy", size=3)
    assert "cannot build" not in str(error.value)
    assert [f.name for f in registry.failures()] == ["buggy"]


def test_bad_option_values_are_the_callers_mistake_not_a_plugin_failure(components):
    """A factory's ValueError is how the contract reports bad input: it reaches the caller as is, unrecorded."""
    with pytest.raises(ValueError, match="size must be at least 1, got 0"):
        registry.create("losses", "strict", size=0)
    assert registry.failures() == []


@pytest.mark.parametrize("value, raised", [("1", ModuleNotFoundError), ("true", ModuleNotFoundError),
                                           ("0", PluginError), ("", PluginError)])
def test_raise_plugin_errors_env_var(plugins, monkeypatch, value, raised):
    plugins.add("pkg-bad", modules={"needs_missing": "import package_that_is_not_installed\n"},
                encoders={"fancy": "needs_missing:Encoder"})
    monkeypatch.setenv(registry.RAISE_ENV, value)
    with pytest.raises(raised, match="package_that_is_not_installed"):
        registry.get("encoders", "fancy")
    assert [f.name for f in registry.failures()] == ["fancy"]  # recorded either way


def test_raise_plugin_errors_env_var_on_build(components, monkeypatch):
    monkeypatch.setenv(registry.RAISE_ENV, "1")
    with pytest.raises(RuntimeError, match="boom while building"):
        registry.create("losses", "explodes")


def test_weights_are_indexed_by_what_providers_return(plugins):
    plugins.add("pkg-a", "1.0", modules={"comp": COMPONENTS}, weights={"good": "comp:weights"})
    plugins.add("pkg-b", "2.0", weights={"bad": "comp:broken_weights"})
    assert registry.list_names("weights") == ["alpha.v1", "beta.v1"]
    entry, _ = registry.find("weights", "beta.v1")
    assert (entry.package, entry.version) == ("pkg-a", "1.0")
    assert registry.get("weights", "alpha.v1").name == "alpha.v1"
    assert registry.describe(entry) == "weights beta.v1"
    assert registry.describe(registry.find("weights", "alpha.v1")[0]) == "weights alpha.v1 [test peak F1 0.432]"
    assert [(f.kind, f.name, f.package, f.error) for f in registry.failures()] == \
        [("weights", "bad", "pkg-b", "OSError: manifest missing")]


WRONG = '''
import sys


def not_an_encoder(**options):
    return {"shape": (3,)}


NUMBER = 7


def dict_weights():
    return [{"name": "dict.v1", "sha256": "0" * 64}]


def exiting_weights():
    sys.exit(2)
'''


def test_what_a_plugin_returns_is_checked_at_the_boundary(components):
    components.add("pkg-wrong", modules={"wrong": WRONG}, encoders={"dict_enc": "wrong:not_an_encoder"},
                   metrics={"number": "wrong:NUMBER"},
                   weights={"dicts": "wrong:dict_weights", "exits": "wrong:exiting_weights"})
    components.add("pkg-good", modules={"good": COMPONENTS.replace("alpha", "gamma")}, weights={"ok": "good:weights"})
    assert registry.list_names("weights") == ["beta.v1", "gamma.v1"]  # the others' providers keep working
    with pytest.raises(PluginError, match="factory returned a dict, not an encoder"):
        registry.create("encoders", "dict_enc")
    with pytest.raises(PluginError, match="names a int, not a factory or function"):
        registry.get("metrics", "number")
    assert registry.create("losses", "huber").options == {}  # a healthy component of another package
    assert sorted((f.name, f.error) for f in registry.failures()) == [
        ("dict_enc", "ContractError: the factory returned a dict, not an encoder (shape, encode, config)"),
        ("dicts", "ContractError: the provider returned a dict, not a WeightConfig"),
        ("exits", "SystemExit: 2"),
        ("number", "ContractError: the entry point names a int, not a factory or function")]


def test_system_exit_at_a_plugins_import_is_its_failure(plugins):
    plugins.add("pkg-exit", modules={"exits_now": "raise SystemExit(3)\n"}, encoders={"bye": "exits_now:Encoder"})
    assert registry.describe(registry.find("encoders", "bye")[0]).startswith("(failed to load")
    assert [(f.name, f.error) for f in registry.failures()] == [("bye", "SystemExit: 3")]


def test_a_provider_raising_an_xrdzoo_error_is_its_failure(plugins):
    source = "from xrdzoo.errors import InputError\n\ndef weights():\n    raise InputError('bad manifest')\n"
    plugins.add("pkg-manifest", modules={"bad_manifest": source}, weights={"bad": "bad_manifest:weights"})
    assert registry.list_names("weights") == []
    assert [(f.name, f.error) for f in registry.failures()] == [("bad", "InputError: bad manifest")]
