# AzuraForge: every habit is a target. `make run` and `make test` do all set-up themselves
# on a machine that has only Python 3.11+, Node 20 and make.

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
RUN := $(UV) run --locked
SYNCED := .venv/.synced

.PHONY: setup run test test-all test-gpu lint format typecheck bench clean

# Install uv when missing, then the whole workspace from the lock file.
$(SYNCED): pyproject.toml uv.lock packages/*/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --locked --all-packages --inexact
	@touch $@

setup: $(SYNCED)

run: setup
	$(RUN) python examples/digits_mlp.py

# The suite CI runs: unit + integration (real Redis/PostgreSQL) + slow proofs; GPU tests run
# only where CuPy and a GPU exist (`make test-gpu`).
test: setup
	$(RUN) lint-imports
	$(RUN) pytest -m "not gpu" -n 2 --dist loadgroup

test-gpu: setup
	$(RUN) pytest -m gpu

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

format: setup
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: setup
	$(RUN) mypy

bench: setup
	bash bench/setup_torch.sh
	$(RUN) python bench/run_all.py

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache
