"""Pretrained weights: the manifest, where a weight file is found, and its hash-checked download and cache.

A weight name (``arch.tag`` in timm's style, e.g. ``resnet20_onehot.mp_ternary``) resolves, in order, to a
verified file in the local cache, the file shipped inside its package, or a download from its URLs. Every file is
sha256-checked each time it is served (about 10 ms for a 6 MiB weight), so a file that rots on disk is caught; a
damaged cached copy is reported, removed and replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field, fields, replace
from importlib.resources import files
from pathlib import Path

import pooch
import requests

from xrdzoo.errors import InputError, XRDZooError, first_line
from xrdzoo.files import atomic_path

HOME_ENV = "XRDZOO_HOME"
OFFLINE_ENV = "XRDZOO_OFFLINE"
TIMEOUT = 30.0  # seconds a server may stay silent before a download is abandoned


class WeightError(XRDZooError, OSError):
    """A weight file that cannot be found, downloaded or trusted; the message is one line saying how to fix it."""


def split_name(name: str) -> tuple[str, str]:
    """``"resnet20_onehot.mp_ternary"`` -> ``("resnet20_onehot", "mp_ternary")``; the tag is ``""`` if absent."""
    arch, _, tag = name.partition(".")
    return arch, tag


@dataclass(frozen=True)
class WeightConfig:
    """One pretrained weight file: where to get it, how to check it, and how it was made."""

    name: str
    sha256: str
    file: str = ""  # the file's name in the cache and in the shipping package; default ``<name>.safetensors``
    size: int | None = None  # bytes
    urls: tuple[str, ...] = ()
    license: str = ""
    data: str = ""  # the training data
    command: str = ""  # the training command
    metrics: dict = field(default_factory=dict, hash=False)  # test metrics
    description: str = ""
    parts: tuple[str, ...] = ()  # further weights (names) whose templates this member joins: one member, several files
    shipped: Path | None = None  # the file inside an installed package, where there is one

    def __post_init__(self):
        if not self.name or self.name != self.name.strip() or "/" in self.name:
            raise InputError(f"weight name {self.name!r} must be non-empty, without spaces at the ends or '/'")
        digest = self.sha256.lower().removeprefix("sha256:")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InputError(f"weight {self.name!r}: sha256 {self.sha256!r} is not 64 hexadecimal digits")
        object.__setattr__(self, "sha256", digest)
        object.__setattr__(self, "file", self.file or f"{self.name}.safetensors")
        if Path(self.file).name != self.file:
            raise InputError(f"weight {self.name!r}: file {self.file!r} must be a bare file name, not a path")
        object.__setattr__(self, "urls", (self.urls,) if isinstance(self.urls, str) else tuple(self.urls))
        object.__setattr__(self, "parts", tuple(self.parts))

    @property
    def arch(self) -> str:
        """The architecture part of the name, before the first dot."""
        return split_name(self.name)[0]

    @property
    def tag(self) -> str:
        """The tag part of the name (training data or recipe), after the first dot."""
        return split_name(self.name)[1]


# --- the manifest ---------------------------------------------------------------------------------------------

_MANIFEST_KEYS = {f.name for f in fields(WeightConfig)} - {"shipped"}


def weights_from_manifest(package: str, manifest: str = "manifest.json") -> list[WeightConfig]:
    """The weights listed in ``manifest`` inside ``package``, with ``shipped`` set where the file is there too.

    A plugin's ``xrdzoo.weights`` provider can be ``lambda: weights_from_manifest("my_plugin.weights")``.
    """
    root = files(package)
    where = f"{package}/{manifest}"
    try:
        entries = json.loads((root / manifest).read_text(encoding="utf-8"))["weights"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"cannot read weights manifest {where}: {type(error).__name__}: {error}") from error
    configs = []
    for i, entry in enumerate(entries):
        unknown = set(entry) - _MANIFEST_KEYS if isinstance(entry, dict) else {"(not an object)"}
        if unknown:
            raise InputError(f"{where} entry {i}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_MANIFEST_KEYS)}")
        try:
            config = WeightConfig(**entry)
        except TypeError as error:  # a required key missing
            raise InputError(f"{where} entry {i}: {error}") from error
        candidate = root / config.file
        shipped = Path(candidate) if isinstance(candidate, Path) and candidate.is_file() else None
        configs.append(replace(config, shipped=shipped))
    return configs


def builtin_weights() -> list[WeightConfig]:
    """xrdzoo's own pretrained weights, listed in ``weights/manifest.json`` (the ``xrdzoo.weights`` package)."""
    return weights_from_manifest("xrdzoo.weights")


# --- the cache and its remembered checks ----------------------------------------------------------------------


def cache_dir() -> Path:
    """Where downloaded weights live: ``$XRDZOO_HOME/weights``, else the user cache folder's ``xrdzoo/weights``."""
    home = os.environ.get(HOME_ENV)
    return (Path(home).expanduser() if home else Path(pooch.os_cache("xrdzoo"))) / "weights"


def _offline(offline: bool | None) -> bool:
    return os.environ.get(OFFLINE_ENV, "").lower() not in ("", "0", "false", "no") if offline is None else offline


def verify(path: Path, config: WeightConfig) -> bool:
    """Whether the file at ``path`` is ``config``'s file: its size and sha256 match (hashed every time)."""
    if not path.is_file() or (config.size is not None and path.stat().st_size != config.size):
        return False
    return pooch.file_hash(str(path), alg="sha256") == config.sha256


# --- resolution and download ----------------------------------------------------------------------------------


def get_config(name: str | WeightConfig) -> WeightConfig:
    """A registered weight's config (a ``WeightConfig`` is returned as it is); unknown names list close matches."""
    if isinstance(name, WeightConfig):
        return name
    from xrdzoo import registry

    return registry.get("weights", name)


def load_member(name_or_path: str | os.PathLike):
    """The zoo member of a checkpoint path or a weight name (:func:`resolve`: hash-checked, downloaded if needed); a
    weight shipped as several files (its ``parts``) comes back as one member."""
    from xrdzoo import checkpoint

    member = checkpoint.read_model(resolve(name_or_path))
    if not Path(name_or_path).expanduser().is_file():  # a weight name: join its parts
        for part in get_config(name_or_path).parts:
            member.join(checkpoint.read_model(resolve(part)))
    return member


def resolve(name_or_path: str | os.PathLike | WeightConfig, offline: bool | None = None,
            progress: bool = True) -> Path:
    """The local file for a checkpoint path, a registered weight name or a ``WeightConfig``.

    An existing path is returned as it is. A weight comes from the cache, else its shipped file, else a download
    (never when ``offline`` is true; ``offline=None`` reads ``XRDZOO_OFFLINE``). Every file is sha256-checked.
    """
    if not isinstance(name_or_path, WeightConfig):
        path = Path(name_or_path).expanduser()
        if path.is_file():
            return path
        if path.suffix == ".safetensors" or "/" in str(name_or_path) or os.sep in str(name_or_path):
            raise FileNotFoundError(f"checkpoint file {str(name_or_path)!r} does not exist; "
                                    "give an existing path or a weight name (see `xrdzoo list weights`)")
    config, cached, checked = _in_cache(name_or_path)
    if checked:
        return cached
    damaged = cached.exists()
    if damaged:
        print(f"warning: the cached copy of weight {config.name!r} ({cached}) failed its sha256 check (damaged on "
              "disk); removed, it is replaced", file=sys.stderr)
        with contextlib.suppress(OSError):
            cached.unlink()
    if config.shipped is not None and verify(config.shipped, config):
        return config.shipped
    _refuse_offline(config, offline, damaged)
    return download(config, progress=progress)


def _in_cache(name: str | WeightConfig) -> tuple[WeightConfig, Path, bool]:
    """A weight's config, the path of its file in the cache, and whether a checked copy lies there."""
    config = get_config(name)
    path = cache_dir() / config.file
    return config, path, verify(path, config)


def _refuse_offline(config: WeightConfig, offline: bool | None, damaged: bool = False) -> None:
    """Raise a one-line ``WeightError`` when offline (``offline``, else ``XRDZOO_OFFLINE``): nothing is fetched."""
    if _offline(offline):
        bad = " (the cached copy failed its sha256 check)" if damaged else ""
        raise WeightError(f"weight {config.name!r} is not available offline{bad}: run `xrdzoo download "
                          f"{config.name}` on a connected machine and copy {config.file} into {cache_dir()}, "
                          f"or unset {OFFLINE_ENV}")


def download(name: str | WeightConfig, progress: bool = True, timeout: float = TIMEOUT) -> Path:
    """The weight's file in the cache: a checked copy already there, else a copy of its checked shipped file, else a
    download from each of its URLs in turn.

    A cached copy that fails its check is deleted first. A copy or download goes to a temporary file that is moved
    into place only once its sha256 matches, so a failed or interrupted one leaves nothing behind and can simply be
    retried.
    """
    config, target, checked = _in_cache(name)
    if checked:
        return target
    if config.shipped is not None and verify(config.shipped, config):
        with atomic_path(target) as partial:
            shutil.copyfile(config.shipped, partial)
            if not verify(partial, config):
                raise WeightError(f"the shipped file of weight {config.name!r} changed while it was copied; "
                                  "run the command again")
        return target
    _refuse_offline(config, None)
    if not config.urls:
        raise WeightError(f"weight {config.name!r} has no download URL and no usable shipped or cached file; "
                          f"copy {config.file} into {target.parent}")
    target.unlink(missing_ok=True)
    downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=1 << 16, timeout=timeout)
    failures = []
    for url in config.urls:
        try:
            pooch.retrieve(url, known_hash=f"sha256:{config.sha256}", fname=config.file, path=target.parent,
                           downloader=downloader)
        except (requests.RequestException, ValueError) as error:
            failures.append(f"{url}: {_reason(error, timeout)}")
        else:
            return target
    raise WeightError(f"cannot download weight {config.name!r}: {'; '.join(failures)}; nothing was saved, "
                      "so retrying is safe")


def _reason(error: Exception, timeout: float) -> str:
    """Why one download failed, in a few words."""
    if isinstance(error, requests.HTTPError):
        return f"HTTP {error.response.status_code} {error.response.reason}"
    if isinstance(error, requests.Timeout) or "timed out" in str(error):  # a stall mid-file is a ConnectionError
        return f"no answer within {timeout:g} s"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection cut before the end of the file"
    if isinstance(error, requests.ConnectionError):
        return "cannot connect (is the address right and the network up?)"
    if isinstance(error, ValueError) and "hash" in str(error):
        return "sha256 mismatch (the server sent other bytes)"
    return first_line(error, named=True)


# --- the cache's contents -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedFile:
    """A file in the weights cache, the weight it belongs to (``None`` if unknown), and whether its sha256 matches."""

    path: Path
    size: int
    weight: str | None
    checked: bool


def _known(configs) -> dict[str, WeightConfig]:
    """Registered weights (or the given ones) by file name."""
    if configs is None:
        from xrdzoo import registry

        configs = [registry.get("weights", e.qualified_name) for e in registry.entries("weights")]
    return {c.file: c for c in map(get_config, configs)}


def cached_files(configs=None) -> list[CachedFile]:
    """The files in the cache; ``checked`` means its sha256 (hashed now) matches its weight's."""
    folder, known = cache_dir(), _known(configs)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if folder.is_dir() else []
    return [CachedFile(p, p.stat().st_size, known[p.name].name if p.name in known else None,
                       p.name in known and verify(p, known[p.name])) for p in paths]


def clear_cache(names=None) -> list[Path]:
    """Delete the cached files of the named weights (names or ``WeightConfig``s), or of all; returns what went."""
    if names is None:
        removed = [f.path for f in cached_files(configs=())]
    else:
        removed = [p for p in (cache_dir() / get_config(n).file for n in names) if p.is_file()]
    for path in removed:
        path.unlink()
    return removed
