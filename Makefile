# Two entry points (see README): `make demo` runs the main job, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo` needs only the runtime; `make test` (and the stamp above) installs everything.
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: demo test lint typecheck pytest bench clean

$(RUNTIME_STAMP): pyproject.toml
	@bash scripts/venv-install $(PYTHON) $(VENV) . "the runtime (pydantic, orjson, rich)"
	@touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml
	@bash scripts/venv-install $(PYTHON) $(VENV) '.[all,dev]' \
		"everything for tests and the web server (pytest, pyright, playwright, postgres, starlette)"
	@touch $(RUNTIME_STAMP) $(STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/weavegraph demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/pyright

pytest: $(STAMP)
	@bash scripts/ensure-test-services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench:
	bash bench/run $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts
