"""The `xrdzoo` command line: each command is a few lines over the Python API."""

from __future__ import annotations

import typer

app = typer.Typer(help="Predict powder XRD patterns from chemical formulas.", no_args_is_help=True)

# --- registry: list ---------------------------------------------------------------------------

# --- xrd: simulate ----------------------------------------------------------------------------

# --- data: build ------------------------------------------------------------------------------

# --- model: train, evaluate, predict ----------------------------------------------------------

# --- hub: download, cache ---------------------------------------------------------------------
