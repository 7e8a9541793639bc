# The two commands a newcomer runs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to the pair that imports together on CPU-only machines (a CUDA build that runs on
# the CPU); pip keeps its download cache in ~/.cache/pip, so a second setup installs from the cache in minutes.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test clean

$(BIN)/xrdzoo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/xrdzoo

demo: setup
	$(BIN)/xrdzoo predict BaTiO3 --plot BaTiO3.png

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
