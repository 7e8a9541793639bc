"""`python -m xrdzoo` (and `torchrun -m xrdzoo`) runs the command line."""

from xrdzoo.cli import app

app(prog_name="xrdzoo")
