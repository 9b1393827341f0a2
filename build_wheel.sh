#!/usr/bin/env bash
# Build the sdist and the wheel into dist/ from a clean slate, then say where the wheel is and how to install it.
#   ./build_wheel.sh                 (PYTHON=/path/to/python to pick the interpreter; it needs `build`)
# The wheel is built from the sdist, so a file the sdist lacks fails the build here rather than on a user's machine.
# Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON="${PYTHON:-python3}"
trap 'echo "build_wheel.sh: failed (line $LINENO); nothing usable in dist/" >&2' ERR

if ! "$PYTHON" -c "import build" 2>/dev/null; then
    echo "error: '$PYTHON' has no 'build' module: $PYTHON -m pip install build  (or pip install -e '.[dev]')" >&2
    exit 1
fi
version="$(tr -d '[:space:]' < VERSION.txt)"
if [[ -z "$version" ]]; then
    echo "error: VERSION.txt is empty" >&2
    exit 1
fi

rm -rf dist build ./*.egg-info
"$PYTHON" -m build --outdir dist .

wheel="dist/ai_energy_benchmarks-${version}-py3-none-any.whl"
sdist="dist/ai_energy_benchmarks-${version}.tar.gz"
for artefact in "$wheel" "$sdist"; do
    if [[ ! -f "$artefact" ]]; then
        echo "error: expected $artefact (version $version from VERSION.txt), but the build did not produce it" >&2
        ls -l dist >&2 || true
        exit 1
    fi
done
echo "Built $wheel"
echo "  and $sdist"
echo "Install the wheel with:"
echo "  pip install '${wheel}[pytorch]'   # CLI, API and the local PyTorch backend"
echo "  pip install '${wheel}[all]'       # every runtime extra (PyTorch backend, report plots)"
echo "  pip install '${wheel}'            # base only: CLI, config, datasets, CodeCarbon, reports (no torch)"
echo "(On a CPU-only machine, pip install a CPU torch build first, so that [pytorch] does not pull a CUDA one.)"
