"""The weights hub against a real HTTP server on 127.0.0.1: good, corrupt, missing, cut and stalled downloads."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

import xrdzoo as xrdzoo_package
from xrdzoo import hub, registry
from xrdzoo.cli import app
from xrdzoo.hub import WeightConfig, WeightError

PAYLOAD = bytes(range(256)) * 800  # 200 kB, streamed in several chunks


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes[path]``: bytes, an HTTP status, or (how, bytes) to misbehave:
    "cut" promises twice the bytes and closes; "stall" sends nothing for a while; "drip" sends them, then stalls."""

    def do_GET(self):
        owner = self.server.owner
        owner.hits.append(self.path)
        reply = owner.routes.get(self.path, 404)
        if isinstance(reply, int):
            self.send_error(reply)
            return
        kind, body = reply if isinstance(reply, tuple) else ("whole", reply)
        if kind == "stall":
            time.sleep(2)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) * (1 if kind == "whole" else 2)))
        self.end_headers()
        self.wfile.write(body)  # for "cut", the connection closes here, half-way through the promised length
        if kind == "drip":
            self.wfile.flush()
            time.sleep(2)

    def log_message(self, *args):
        pass


class WeightServer:
    """A real HTTP server in a thread on a free port; tests change ``routes`` to break and fix it."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.hits: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = WeightServer()
    yield running
    running.stop()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty XRDZOO_HOME, online."""
    monkeypatch.setenv(hub.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(hub.OFFLINE_ENV, raising=False)
    return tmp_path / "home"


def weight(server: WeightServer, *paths: str, name: str = "tiny.test", **extra) -> WeightConfig:
    """A weight whose true bytes are PAYLOAD, downloadable from ``paths`` on the server."""
    server.routes.setdefault("/good", PAYLOAD)
    return WeightConfig(name=name, sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD),
                        urls=tuple(server.url(p) for p in paths or ("/good",)), **extra)


def cache_contents() -> list[str]:
    """Every file in the cache folder but the record of checks: no partial or temporary file may hide there."""
    folder = hub.cache_dir()
    return sorted(p.name for p in folder.iterdir() if p.name != ".checked.json") if folder.is_dir() else []


def test_names_split_into_arch_and_tag_and_configs_are_checked():
    config = WeightConfig(name="resnet20_onehot.mp_ternary", sha256="sha256:" + "AB" * 32, urls="https://x/y")
    assert (config.arch, config.tag) == ("resnet20_onehot", "mp_ternary")
    assert hub.split_name("mlp") == ("mlp", "")
    assert config.sha256 == "ab" * 32 and config.file == "resnet20_onehot.mp_ternary.safetensors"
    assert config.urls == ("https://x/y",)
    with pytest.raises(ValueError, match="not 64 hexadecimal digits"):
        WeightConfig(name="a.b", sha256="abc")
    with pytest.raises(ValueError, match="bare file name"):
        WeightConfig(name="a.b", sha256="0" * 64, file="../a.safetensors")


def test_good_download_lands_in_the_cache_checked(server, home):
    config = weight(server)
    path = hub.resolve(config, progress=False)
    assert path == home / "weights" / config.file and path.read_bytes() == PAYLOAD
    assert cache_contents() == [config.file] and server.hits == ["/good"]
    assert hub.cached_files([config]) == [hub.CachedFile(path, len(PAYLOAD), "tiny.test", True)]
    assert hub.resolve(config, progress=False) == path and server.hits == ["/good"]  # second time: no network
    assert hub.download(config, progress=False) == path and server.hits == ["/good"]


BROKEN = {
    "corrupt": (bytes(reversed(PAYLOAD)), "sha256 mismatch"),
    "missing": (404, "HTTP 404 Not Found"),
    "cut": (("cut", PAYLOAD[:50_000]), "connection cut before the end of the file"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_failed_download_leaves_nothing_and_a_retry_succeeds(server, home, case):
    reply, reason = BROKEN[case]
    server.routes["/w"] = reply
    config = weight(server, "/w")
    with pytest.raises(WeightError) as failed:
        hub.resolve(config, progress=False)
    message = str(failed.value)
    assert "\n" not in message and "'tiny.test'" in message and f"{server.url('/w')}: {reason}" in message
    assert cache_contents() == []
    server.routes["/w"] = PAYLOAD  # the server is fixed
    assert hub.resolve(config, progress=False).read_bytes() == PAYLOAD
    assert cache_contents() == [config.file]


@pytest.mark.parametrize("how", ["stall", "drip"])
def test_a_silent_server_times_out_in_one_line(server, home, how):
    server.routes["/slow"] = (how, PAYLOAD[:1000])
    config = weight(server, "/slow")
    with pytest.raises(WeightError, match=r"/slow: no answer within 0.2 s; nothing was saved"):
        hub.download(config, progress=False, timeout=0.2)
    assert cache_contents() == []


def test_an_unreachable_server_is_named(server, home):
    config = weight(server)
    server.stop()
    with pytest.raises(WeightError, match=r"weight 'tiny.test': http://127.0.0.1:\d+/good: cannot connect"):
        hub.resolve(config, progress=False)


def test_urls_are_tried_in_turn(server, home):
    server.routes["/corrupt"] = b"not the weights"
    config = weight(server, "/gone", "/corrupt", "/good")
    assert hub.resolve(config, progress=False).read_bytes() == PAYLOAD
    assert server.hits == ["/gone", "/corrupt", "/good"]


def test_offline_with_nothing_cached_says_how_to_fix_it(server, home, monkeypatch):
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    config = weight(server)
    with pytest.raises(WeightError) as failed:
        hub.resolve(config)
    message = str(failed.value)
    assert "\n" not in message and "'tiny.test' is not available offline" in message
    assert f"run `xrdzoo download tiny.test` on a connected machine and copy {config.file} into " \
           f"{home / 'weights'}" in message
    assert server.hits == [] and cache_contents() == []
    with pytest.raises(WeightError, match="not available offline"):
        hub.resolve(config, offline=True)  # the argument works without the variable too
    monkeypatch.setenv(hub.OFFLINE_ENV, "0")
    assert hub.resolve(config, progress=False).read_bytes() == PAYLOAD


def test_a_cached_file_is_used_without_network(server, home, monkeypatch):
    config = weight(server)
    path = hub.resolve(config, progress=False)
    server.stop()
    assert hub.resolve(config) == path
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    assert hub.resolve(config) == path


def test_a_copied_in_file_is_hashed_before_use(server, home, monkeypatch):
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    config = weight(server)
    (home / "weights").mkdir(parents=True)
    (home / "weights" / config.file).write_bytes(PAYLOAD[:-1] + b"\x00")
    assert hub.cached_files([config])[0].checked is False
    (home / "weights" / config.file).write_bytes(PAYLOAD)
    assert hub.cached_files([config])[0].checked is True
    assert hub.resolve(config).read_bytes() == PAYLOAD


def test_a_cached_file_that_rots_after_its_check_is_caught_reported_and_replaced(server, home, capsys):
    config = weight(server)
    path = hub.resolve(config, progress=False)
    before = path.stat()
    with open(path, "r+b") as file:  # a bit flips in place: same size, inode and (restored) mtime
        file.seek(1000)
        file.write(bytes([PAYLOAD[1000] ^ 0x10]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_ino, path.stat().st_mtime_ns) == \
        (before.st_size, before.st_ino, before.st_mtime_ns)
    assert hub.resolve(config, progress=False).read_bytes() == PAYLOAD and server.hits == ["/good", "/good"]
    assert "cached copy of weight 'tiny.test'" in capsys.readouterr().err


@pytest.mark.parametrize("record", ["[1, 2]", "{not json", '{"PATH": 5}', '{"PATH": ["x"]}', '{"PATH": null}'])
def test_a_malformed_record_of_checks_is_shrugged_off(server, home, record):
    config = weight(server)
    path = hub.resolve(config, progress=False)
    record = record.replace("PATH", str(path.resolve()))  # an entry for the very file being served
    (home / "weights" / ".checked.json").write_text(record)  # left by an older xrdzoo, or damaged
    assert hub.resolve(config) == path and hub.cached_files([config])[0].checked


def test_a_changed_cached_file_is_rejected_and_downloaded_again(server, home, monkeypatch):
    config = weight(server)
    path = hub.resolve(config, progress=False)
    path.write_bytes(PAYLOAD[:-1] + b"\x00")  # same size, other bytes
    assert hub.cached_files([config])[0].checked is False
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    with pytest.raises(WeightError, match=r"offline \(the cached copy failed its sha256 check\)"):
        hub.resolve(config)
    monkeypatch.delenv(hub.OFFLINE_ENV)
    assert hub.resolve(config, progress=False).read_bytes() == PAYLOAD and server.hits == ["/good", "/good"]


def test_a_shipped_file_is_used_when_it_matches_its_hash(server, home, tmp_path):
    shipped = tmp_path / "package" / "tiny.safetensors"
    shipped.parent.mkdir()
    shipped.write_bytes(PAYLOAD)
    config = weight(server, file="tiny.safetensors", shipped=shipped)
    assert hub.resolve(config) == shipped and server.hits == [] and cache_contents() == []
    shipped.write_bytes(b"x" * len(PAYLOAD))  # a damaged install falls back to the download
    assert hub.resolve(config, progress=False) == home / "weights" / "tiny.safetensors"
    assert server.hits == ["/good"]


def test_an_explicit_path_wins(server, home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tiny.test").write_bytes(b"a local file named like the weight")
    assert hub.resolve("tiny.test") == Path("tiny.test")
    assert hub.resolve(tmp_path / "tiny.test") == tmp_path / "tiny.test" and server.hits == []
    with pytest.raises(FileNotFoundError, match="'runs/x/best.safetensors' does not exist; give an existing path"):
        hub.resolve("runs/x/best.safetensors")


def test_an_unknown_name_points_to_the_list(home):
    with pytest.raises(registry.PluginError, match=r"no weight named 'no_such\.weight'.*`xrdzoo list weights`"):
        hub.resolve("no_such.weight")


def test_clear_cache_removes_named_or_all(server, home):
    first, second = weight(server), weight(server, name="other.test")
    paths = [hub.resolve(first, progress=False), hub.resolve(second, progress=False)]
    assert hub.clear_cache([second]) == [paths[1]] and cache_contents() == [first.file]
    assert hub.clear_cache([second]) == []
    assert hub.clear_cache() == [paths[0]] and cache_contents() == []


# --- manifests ------------------------------------------------------------------------------------------------


def write_package(root: Path, name: str, entries: list) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    (root / name / "manifest.json").write_text(json.dumps({"weights": entries}))


def test_a_manifest_lists_weights_and_finds_shipped_files(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    write_package(tmp_path, "hubtest_manifest", [
        {"name": "mlp_onehot.v1", "file": "mlp.safetensors", "sha256": digest, "size": len(PAYLOAD),
         "urls": ["https://example.org/mlp.safetensors"], "license": "MIT", "data": "toy", "command": "xrdzoo train",
         "metrics": {"pearson": 0.5}, "description": "a toy"},
        {"name": "knn_onehot.v1", "sha256": digest},
    ])
    (tmp_path / "hubtest_manifest" / "mlp.safetensors").write_bytes(PAYLOAD)
    mlp, knn = hub.weights_from_manifest("hubtest_manifest")
    assert mlp.shipped == tmp_path / "hubtest_manifest" / "mlp.safetensors" and knn.shipped is None
    assert mlp.urls == ("https://example.org/mlp.safetensors",) and mlp.metrics == {"pearson": 0.5}
    assert knn.file == "knn_onehot.v1.safetensors" and knn.urls == ()
    write_package(tmp_path, "hubtest_typo", [{"name": "a.b", "sha256": digest, "url": "https://x"}])
    with pytest.raises(ValueError, match=r"hubtest_typo/manifest.json entry 0: unknown key\(s\) \['url'\]"):
        hub.weights_from_manifest("hubtest_typo")
    write_package(tmp_path, "hubtest_nohash", [{"name": "a.b"}])
    with pytest.raises(ValueError, match="entry 0: .*sha256"):
        hub.weights_from_manifest("hubtest_nohash")


def test_the_default_card_holds_its_benchmarked_test_figures(monkeypatch):
    """The default's test figures (shown by ``xrdzoo list``) are its per-type benchmark's, at its shipped options."""
    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(benchmarks))
    from ship_templates import card_metrics

    member = xrdzoo_package.load(xrdzoo_package.DEFAULT_MODEL)
    metrics = hub.get_config(xrdzoo_package.DEFAULT_MODEL).metrics
    assert metrics == card_metrics(str(benchmarks / "results" / "template_types.json"), member.k, member.consensus)
    assert [key for key in metrics if key.startswith("peak_f1/")] == [
        "peak_f1/binary", "peak_f1/ternary", "peak_f1/quaternary", "peak_f1/quinary+"]
    assert f"[test peak F1 {metrics['peak_f1']:.3f}]" in xrdzoo("list", "weights").output


def test_every_builtin_weight_can_be_had_and_shipped_files_match():
    for config in hub.builtin_weights():
        assert config.urls or config.shipped, f"{config.name} has neither URLs nor a shipped file"
        if config.shipped is not None:
            assert hashlib.sha256(config.shipped.read_bytes()).hexdigest() == config.sha256, config.name


# --- a third-party provider and the CLI -----------------------------------------------------------------------


@pytest.fixture
def provider(tmp_path, server, home, monkeypatch):
    """A plugin distribution (real entry-point metadata on sys.path) whose provider registers ``tiny.test``."""
    site = tmp_path / "site"
    info = site / "hubtest_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hubtest-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[xrdzoo.weights]\nhubtest = hubtest_weights:weights\n")
    (site / "hubtest_weights.py").write_text(
        "from xrdzoo.hub import WeightConfig\n\n\n"
        f"def weights():\n    return [WeightConfig(**{vars(weight(server, description='a test weight'))!r})]\n")
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    yield server
    monkeypatch.undo()
    sys.modules.pop("hubtest_weights", None)
    registry.refresh()


def xrdzoo(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_download_list_and_clear(provider, home):
    assert "tiny.test" in registry.list_names("weights")
    assert xrdzoo("cache", "dir").output.strip() == str(home / "weights")
    assert "no cached weights in" in xrdzoo("cache", "list").output
    result = xrdzoo("download", "tiny.test")
    path = home / "weights" / "tiny.test.safetensors"
    assert result.exit_code == 0 and result.output.strip().endswith(f"tiny.test: {path}"), result.output
    listed = xrdzoo("cache", "list").output.splitlines()
    assert listed[0].split() == ["FILE", "WEIGHT", "SIZE", "CHECKED"]
    assert listed[1].split() == ["tiny.test.safetensors", "tiny.test", "0.2", "MiB", "yes"]
    assert xrdzoo("download", "--all").exit_code == 0 and provider.hits == ["/good"]  # shipped ones are copied
    everything = sorted(hub.get_config(n).file for n in registry.list_names("weights"))
    assert cache_contents() == everything
    assert xrdzoo("cache", "clear", "tiny.test").output.strip() == f"removed {path}" and not path.exists()
    assert xrdzoo("download", "--all").exit_code == 0 and path.read_bytes() == PAYLOAD
    removed = xrdzoo("cache", "clear").output.splitlines()
    assert f"removed {path}" in removed and len(removed) == len(everything)
    assert xrdzoo("cache", "clear").output.strip() == f"nothing to remove in {home / 'weights'}"


def test_cli_errors_are_one_line(provider, home, monkeypatch):
    unknown = xrdzoo("download", "tiny.tset")
    assert unknown.exit_code == 1
    assert "no weight named 'tiny.tset'; did you mean tiny.test? (see `xrdzoo list weights`" in unknown.output
    assert "Traceback" not in unknown.output
    assert xrdzoo("download").exit_code == 2 and "give weight names or --all" in xrdzoo("download").output
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    offline = xrdzoo("download", "tiny.test")
    assert offline.exit_code == 1 and "'tiny.test' is not available offline" in offline.output
    assert provider.hits == [] and cache_contents() == []


def test_download_puts_a_checked_copy_of_a_shipped_weight_in_the_cache(home, monkeypatch):
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")  # a shipped weight needs no network
    result = xrdzoo("download", xrdzoo_package.DEFAULT_MODEL)
    cached = home / "weights" / f"{xrdzoo_package.DEFAULT_MODEL}.safetensors"
    parts = hub.get_config(xrdzoo_package.DEFAULT_MODEL).parts  # a weight in several files: every file comes
    assert result.exit_code == 0 and result.output.splitlines()[0].endswith(str(cached)), result.output
    assert cached.read_bytes() == hub.get_config(xrdzoo_package.DEFAULT_MODEL).shipped.read_bytes()
    assert cache_contents() == sorted([cached.name, *(f"{part}.safetensors" for part in parts)])  # no partial file
    assert hub.resolve(xrdzoo_package.DEFAULT_MODEL) == cached  # served from the cache from now on
