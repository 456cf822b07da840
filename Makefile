# AzuraForge: every habit is a target. `make run` and `make test` do all set-up themselves
# on a machine that has only Python 3.11+, Node 20 and make.

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
RUN := $(UV) run --locked
SYNCED := .venv/.synced
NPM_DEPS := dashboard/node_modules/.installed
DASHBOARD_BUILD := dashboard/dist/index.html
DASHBOARD_SRC := $(shell find dashboard/src dashboard/index.html dashboard/vite.config.ts -type f 2>/dev/null)

.PHONY: setup run test test-python test-dashboard test-e2e test-gpu test-containers lint format typecheck bench clean

# Install uv when missing, then the whole workspace from the lock file. Bytecode is compiled
# at install: where PYTHONDONTWRITEBYTECODE is set (many CI and container images), Python
# never caches it and recompiles numpy at every start (measured: `import numpy` 0.46 s
# instead of 0.17 s, the engine's first training step 0.52 s instead of 0.20 s).
$(SYNCED): pyproject.toml uv.lock packages/*/pyproject.toml apps/*/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --locked --all-packages --inexact --compile-bytecode
	@$(UV) run --locked python -m compileall -q packages apps >/dev/null
	@touch $@

$(NPM_DEPS): dashboard/package.json dashboard/package-lock.json
	cd dashboard && npm ci --no-audit --no-fund
	@touch $@

$(DASHBOARD_BUILD): $(NPM_DEPS) $(DASHBOARD_SRC)
	cd dashboard && npm run build

setup: $(SYNCED) $(DASHBOARD_BUILD)

# The whole platform on this machine: API, embedded workers and the dashboard, no services needed.
run: setup
	$(RUN) azuraforge up

# The suite CI runs: unit + integration (real Redis/PostgreSQL) + slow proofs; GPU tests run
# only where CuPy and a GPU exist (`make test-gpu`), the container stack in `make test-containers`.
test: test-python test-dashboard test-e2e

test-python: setup
	$(RUN) lint-imports
	$(RUN) pytest -m "not gpu and not containers" -n 2 --dist loadgroup

test-dashboard: setup
	cd dashboard && npm test

# Real-browser tests against a real `azuraforge up`, then the study walkthrough against `azuraforge
# api` and two Celery workers on the real Redis; Debian's Chromium is installed when missing.
test-e2e: setup
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	cd dashboard && npx playwright test
	cd dashboard && E2E_WORKERS=2 npx playwright test e2e/10-study.spec.ts  # `api` + two Celery workers

test-gpu: setup
	$(RUN) pytest -m gpu

# The images built from deploy/Dockerfile and the compose stack run with Podman (installed from
# Debian when missing, as root): minutes, most of them the first build; the images stay as cache.
test-containers: setup
	$(RUN) pytest -m containers

# ruff, the architecture contracts, the CI workflows against their JSON schema (vendored in
# check-jsonschema, nothing downloaded) and one version for every package.
lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports
	$(RUN) check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(RUN) python .ci/version.py check

format: setup
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: setup
	$(RUN) mypy

bench: setup
	bash bench/setup_torch.sh
	$(RUN) python bench/compare.py

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache
