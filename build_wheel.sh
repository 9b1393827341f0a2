#!/usr/bin/env bash
# Build the wheel and sdist into dist/ from a clean tree. Usage: ./build_wheel.sh  (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON="${PYTHON:-python3}"

rm -rf dist build ./*.egg-info
"$PYTHON" -m build --sdist --wheel --outdir dist .

version="$(tr -d '[:space:]' < VERSION.txt)"
wheel="dist/ai_energy_benchmarks-${version}-py3-none-any.whl"
if [[ ! -f "$wheel" ]]; then
    echo "error: expected $wheel, but the build did not produce it" >&2
    ls -l dist >&2 || true
    exit 1
fi
echo "Built $wheel"
echo "Install it with:  pip install '${wheel}[pytorch]'   (or [all] for the development tools)"
