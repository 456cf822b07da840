#!/usr/bin/env bash
# Make .torch-venv: a virtual environment of its own with PyTorch (CPU build), numpy and
# threadpoolctl, for the comparison in bench/compare.py. The torch children run with its
# python and never see the project's packages; the engine children run with .venv's python
# and never see torch (bench/README.md).
#
# torch is NOT a project dependency and never comes from PyPI here: PyPI's Linux build is a
# multi-GB CUDA wheel. We install the exact local CPU wheel (torch==2.13.0+cpu) found in the
# folder named by $PIP_FIND_LINKS or pip's `find-links` setting; PyPI has no `+cpu` release, so
# pip cannot fall back to downloading one. Without such a wheel we say so and exit 0: the
# harness then prints SKIP for the ratios.
set -euo pipefail

TORCH_VERSION="2.13.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV=".torch-venv"
PY="$VENV/bin/python"

if [[ -x "$PY" ]] && "$PY" -c "
import sys, numpy, threadpoolctl, torch
sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    echo "setup_torch: $VENV already has torch $TORCH_VERSION"
    exit 0
fi

DIR="${PIP_FIND_LINKS:-}"
if [[ -z "$DIR" ]]; then
    DIR="$(python3 -m pip config get global.find-links 2>/dev/null || true)"
fi
shopt -s nullglob
wheels=()
if [[ -n "$DIR" && -d "$DIR" ]]; then
    wheels=("$DIR"/torch-"$TORCH_VERSION"+cpu-*.whl)
fi
if (( ${#wheels[@]} == 0 )); then
    echo "setup_torch: no local torch-$TORCH_VERSION+cpu wheel in PIP_FIND_LINKS='${DIR}';" \
         "the PyTorch comparison in bench/ will be skipped."
    echo "  To enable it, put the CPU wheel in a folder, set PIP_FIND_LINKS to it and run" \
         "this script again."
    exit 0
fi

# The same numpy as the engine's, so data loading and the BLAS under numpy match.
NUMPY_VERSION="$(.venv/bin/python -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
numpy_req="numpy${NUMPY_VERSION:+==$NUMPY_VERSION}"

wheel_name="$(basename "${wheels[0]}")"
local_version="$(echo "$wheel_name" | cut -d- -f2)"  # e.g. 2.13.0+cpu
echo "setup_torch: creating $VENV with torch==$local_version from $DIR, $numpy_req, threadpoolctl"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --find-links "$DIR" "torch==$local_version" "$numpy_req" threadpoolctl
"$PY" -c "import torch, numpy; print('setup_torch: torch', torch.__version__, 'numpy', numpy.__version__, 'ready in $VENV')"
