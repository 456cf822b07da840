#!/usr/bin/env bash
# Put PyTorch (CPU build) into the project's .venv for the benchmark comparisons only.
#
# torch is NOT a project dependency: it is installed from a LOCAL wheel found in the
# directory named by $PIP_FIND_LINKS (e.g. /opt/wheels). When no such wheel exists we skip,
# because the PyPI default for Linux is a multi-GB CUDA build we never want to download.
# torch's small pure-Python dependencies (sympy, networkx, jinja2, ...) come from PyPI.
#
# Note: a later `uv sync` removes packages that are not in uv.lock, torch included; run this
# script again after it (`uv run` alone keeps it).
set -euo pipefail

TORCH_VERSION="2.13.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=".venv/bin/python"

if [[ ! -x "$PY" ]]; then
    echo "setup_torch: $ROOT/.venv does not exist; run 'uv sync' first" >&2
    exit 1
fi

if "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    echo "setup_torch: torch $TORCH_VERSION is already installed in .venv"
    exit 0
fi

DIR="${PIP_FIND_LINKS:-}"
shopt -s nullglob
wheels=()
if [[ -n "$DIR" && -d "$DIR" ]]; then
    wheels=("$DIR"/torch-"$TORCH_VERSION"*.whl)
fi
if (( ${#wheels[@]} == 0 )); then
    echo "setup_torch: no local torch-$TORCH_VERSION wheel in PIP_FIND_LINKS='${DIR}';" \
         "the PyTorch comparison in bench/ will be skipped."
    echo "  To enable it, put a CPU wheel (torch-$TORCH_VERSION+cpu-...whl) in a folder," \
         "set PIP_FIND_LINKS to that folder and run this script again."
    exit 0
fi

# Pin the exact local version of the wheel we found (e.g. 2.13.0+cpu): PyPI has no '+cpu'
# build, so the resolver cannot fall back to downloading the CUDA wheel from the index.
wheel_name="$(basename "${wheels[0]}")"
local_version="$(echo "$wheel_name" | cut -d- -f2)"
echo "setup_torch: installing torch==$local_version from $DIR"
uv pip install --python "$PY" --find-links "$DIR" "torch==$local_version"
"$PY" -c "import torch; print('setup_torch: torch', torch.__version__, 'ready')"
