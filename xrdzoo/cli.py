"""The `xrdzoo` command line: each command is a few lines over the Python API."""

from __future__ import annotations

import fnmatch
import json
from typing import Annotated

import typer

from xrdzoo import __version__, registry

app = typer.Typer(help="Predict powder XRD patterns from chemical formulas.", no_args_is_help=True)


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
    kinds = registry.KINDS if kind == "all" else (kind + "s" if kind + "s" in registry.KINDS else kind,)
    try:
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

# --- xrd: simulate ----------------------------------------------------------------------------

# --- data: build ------------------------------------------------------------------------------

# --- model: train, evaluate, predict ----------------------------------------------------------

# --- hub: download, cache ---------------------------------------------------------------------
