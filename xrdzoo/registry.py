"""The plugin registry: encoders, backbones, predictors, losses, metrics and weights, all found through entry points.

Every component, xrdzoo's own included, is an entry point in the group ``xrdzoo.<kind>``. Names are read from
package metadata without importing anything; a plugin's module is imported the first time it is used. A plugin
that fails to import or to build is recorded with its package and error (see :func:`failures`) and the rest of the
registry keeps working; set ``XRDZOO_RAISE_PLUGIN_ERRORS=1`` to get the original exception instead (an exit stays
contained). What a plugin hands back is checked here, at the boundary: an entry point must name something callable,
a factory must return what its kind's contract asks for, a weights provider ``WeightConfig`` objects. ``SystemExit``
or a ``KeyboardInterrupt`` a plugin raises itself counts as its failure; only a real Ctrl-C ends the program.

Weights are data, not code: each ``xrdzoo.weights`` entry point names a provider function returning
``WeightConfig`` objects, and the registry indexes what the providers return by weight name.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from xrdzoo.contracts import Encoder, Weight
from xrdzoo.errors import InputError, XRDZooError

SINGULAR = {"encoders": "encoder", "backbones": "backbone", "predictors": "predictor", "losses": "loss",
            "metrics": "metric", "weights": "weight"}
KINDS = tuple(SINGULAR)
RAISE_ENV = "XRDZOO_RAISE_PLUGIN_ERRORS"


class PluginError(XRDZooError, LookupError):
    """A component that cannot be found, is ambiguous, or failed to import or build."""


@dataclass(frozen=True)
class Entry:
    """One registered component: its kind, name, providing package, and how to load it."""

    kind: str
    name: str
    package: str
    version: str
    target: str  # "module:attribute" of the entry point
    loader: Callable[[], Any] = field(repr=False, compare=False)

    @property
    def qualified_name(self) -> str:
        """``package:name``, the spelling that picks this entry when two packages share a name."""
        return f"{self.package}:{self.name}"


@dataclass(frozen=True)
class Failure:
    """A plugin that failed to import or build, kept so that ``xrdzoo list --errors`` can show it."""

    kind: str
    name: str
    package: str
    error: str


_failures: dict[tuple[str, str, str], Failure] = {}


def kind_name(kind: str) -> str:
    """The plural kind for a kind given in the singular or plural (``loss`` -> ``losses``)."""
    for plural, singular in SINGULAR.items():
        if kind in (plural, singular):
            return plural
    raise PluginError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")


def _natural_key(text: str) -> list:
    """Sort key that puts resnet10 before resnet15 before resnet100."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.lower())]


def _normalize_package(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``xrdzoo_example`` is ``xrdzoo-example``."""
    return re.sub(r"[-_.]+", "-", name).lower()


class ContractError(TypeError):
    """What a plugin handed back is not what its kind's contract asks for (recorded as the plugin's failure)."""


# What a factory of each kind must return (the rest of the contract is checked where it is used).
_RETURNS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "encoders": ("an encoder (shape, encode, config)", lambda made: isinstance(made, Encoder)),
    "backbones": ("a callable module", callable),
    "losses": ("a callable loss", callable),
    "predictors": ("a predictor (answer, predict, fit, state_dict, load_state_dict)",
                   lambda made: all(callable(getattr(made, m, None))
                                    for m in ("answer", "predict", "fit", "state_dict", "load_state_dict"))),
}


@contextmanager
def _ctrl_c() -> Iterator[list[int]]:
    """Within the block, a real Ctrl-C (SIGINT under Python's default handler) is noted in the list it yields before
    it raises ``KeyboardInterrupt`` as usual, so a ``KeyboardInterrupt`` a plugin raises itself can be told apart."""
    pressed: list[int] = []
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield pressed
        return

    def handler(signum, frame):
        pressed.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _plugin_call(kind: str, name: str, package: str, call: Callable[[], Any], passes: tuple = ()) -> Any:
    """``call()`` (an import, a factory, a provider): any exception it raises, ``SystemExit`` and the plugin's own
    ``KeyboardInterrupt`` included, is recorded as the plugin's failure and raised as a one-line
    :class:`PluginError`; exceptions of the types in ``passes`` (a user's bad option) and a real Ctrl-C pass
    through."""
    try:
        with _ctrl_c() as pressed:
            return call()
    except passes:
        raise
    except KeyboardInterrupt as error:
        if pressed or type(error) is not KeyboardInterrupt:  # Ctrl-C, or a stop signal a trainer turned into one
            raise
        raise _record_failure(kind, name, package, error) from error
    except (Exception, SystemExit) as error:
        raise _record_failure(kind, name, package, error) from error


def _record_failure(kind: str, name: str, package: str, error: BaseException) -> PluginError:
    message = (f"{type(error).__name__}: {error}".splitlines() or [type(error).__name__])[0]
    _failures[kind, name, package] = Failure(kind, name, package, message)
    if os.environ.get(RAISE_ENV, "") not in ("", "0") and isinstance(error, Exception):  # exits stay contained
        raise error
    return PluginError(f"{SINGULAR[kind]} {name!r} from package {package!r} failed: {message}")


@functools.cache
def _code_entries(kind: str) -> tuple[Entry, ...]:
    found = []
    for ep in entry_points(group=f"xrdzoo.{kind}"):
        package = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else "?"
        found.append(Entry(kind, ep.name, package, version, ep.value, functools.cache(ep.load)))
    return tuple(found)


@functools.cache
def _weight_entries() -> tuple[Entry, ...]:
    found = []
    for provider in _code_entries("weights"):
        try:  # a broken provider must not take the others down
            configs = _plugin_call("weights", provider.name, provider.package,
                                   lambda provider=provider: _weight_configs(provider))
        except PluginError:
            continue
        for config in configs:
            found.append(Entry("weights", config.name, provider.package, provider.version, provider.target,
                               lambda config=config: config))
    return tuple(found)


def _weight_configs(provider: Entry) -> list:
    """What a weights provider returns, checked: a list (or other iterable) of ``WeightConfig`` objects."""
    configs = list(provider.loader()())
    wrong = next((c for c in configs if not isinstance(c, Weight)), None)
    if wrong is not None:
        raise ContractError(f"the provider returned a {type(wrong).__name__}, not a WeightConfig")
    return configs


def entries(kind: str) -> tuple[Entry, ...]:
    """All registered entries of one kind, in natural name order (no plugin code is imported, weights aside)."""
    kind = kind_name(kind)
    found = _weight_entries() if kind == "weights" else _code_entries(kind)
    return tuple(sorted(found, key=lambda e: (_natural_key(e.name), e.package)))


def list_names(kind: str, pattern: str | Iterable[str] = "*") -> list[str]:
    """Names of one kind matching a shell wildcard (or any of several), like ``timm.list_models``."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = dict.fromkeys(e.name for e in entries(kind))
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def find(kind: str, name: str) -> tuple[Entry, str | None]:
    """The entry a name refers to, and the variant for ``family/variant`` names (e.g. ``timm/resnet18``).

    ``package:name`` picks one entry when several packages register the same name.
    """
    kind = kind_name(kind)
    package, _, bare = name.rpartition(":") if ":" in name else ("", "", name)
    wanted = _normalize_package(package)
    candidates = [e for e in entries(kind) if e.name == bare and wanted in ("", _normalize_package(e.package))]
    variant = None
    if not candidates and "/" in bare:
        family, _, variant = bare.partition("/")
        candidates = [e for e in entries(kind) if e.name == family and wanted in ("", _normalize_package(e.package))]
    if not candidates:
        known = [e.name for e in entries(kind)]
        close = difflib.get_close_matches(bare, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise PluginError(
            f"no {SINGULAR[kind]} named {name!r}{hint} (see `xrdzoo list {kind}`; a plugin package may be missing)"
        )
    if len(candidates) > 1:
        choices = " or ".join(repr(e.qualified_name) for e in candidates)
        packages = " and ".join(e.package for e in candidates)
        raise PluginError(f"{SINGULAR[kind]} {bare!r} is registered by both {packages}; pick one as {choices}")
    return candidates[0], variant


def get(kind: str, name: str) -> Any:
    """The object an entry point names (a factory, or a ``WeightConfig`` for weights), imported on first use."""
    kind = kind_name(kind)
    entry, variant = find(kind, name)
    if variant is not None:
        raise PluginError(f"{SINGULAR[kind]} name {name!r} has a variant; build it with create({kind!r}, {name!r})")
    return _load_entry(entry)


def _load_entry(entry: Entry) -> Any:
    """What an entry point names, imported once; code must be callable (a factory, or a metric function)."""
    if entry.kind == "weights":
        return entry.loader()  # a WeightConfig, checked when its provider was called
    return _plugin_call(entry.kind, entry.name, entry.package, lambda: _callable(entry.loader()))


def _callable(target: Any) -> Any:
    if not callable(target):
        raise ContractError(f"the entry point names a {type(target).__name__}, not a factory or function")
    return target


def create(kind: str, name: str, *args: Any, **options: Any) -> Any:
    """Build a component: call its factory with ``args`` and ``options`` (and ``variant=`` for family names)."""
    kind = kind_name(kind)
    entry, variant = find(kind, name)
    factory = _load_entry(entry)
    if variant is not None:
        options["variant"] = variant
    try:  # wrong options are the caller's mistake: checked against the factory's signature before the call
        inspect.signature(factory).bind(*args, **options)
    except TypeError as error:
        raise PluginError(f"cannot build {SINGULAR[kind]} {name!r} with options {options}: {error}") from error
    except ValueError:  # a factory without an inspectable signature (some builtins): the call itself checks
        pass

    def build() -> Any:
        try:
            made = factory(*args, **options)
        except XRDZooError:
            raise
        except ValueError as error:  # how a factory reports bad option values: the caller's to fix
            raise InputError(f"cannot build {SINGULAR[kind]} {name!r}: {error}") from error
        return _made(kind, made)

    return _plugin_call(kind, entry.name, entry.package, build, passes=(XRDZooError,))


def _made(kind: str, made: Any) -> Any:
    """What a factory built, if it is what its kind's contract asks for."""
    wanted, meets = _RETURNS.get(kind, ("", lambda _: True))
    if not meets(made):
        raise ContractError(f"the factory returned a {type(made).__name__}, not {wanted}")
    return made


def describe(entry: Entry) -> str:
    """One-line description: a weight's own (with its test peak F1 when known), else the first paragraph of the
    docstring of what the entry point names, on one line."""
    try:
        target = _load_entry(entry)
    except PluginError:
        return "(failed to load: see `xrdzoo list --errors`)"
    text = getattr(target, "description", "") or (target.__doc__ or "")
    line = " ".join(text.strip().split("\n\n")[0].split())  # a summary may wrap over several lines
    f1 = (getattr(target, "metrics", None) or {}).get("peak_f1")
    return f"{line} [test peak F1 {f1:.3f}]" if f1 is not None else line


def failures() -> list[Failure]:
    """Plugins that failed to import or build so far in this process."""
    return list(_failures.values())


def refresh() -> None:
    """Forget what was read from package metadata (after installing or removing a plugin at run time)."""
    _code_entries.cache_clear()
    _weight_entries.cache_clear()
    _failures.clear()
