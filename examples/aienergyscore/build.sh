#!/usr/bin/env bash
# Build the AIEnergyScore-style image in two steps (docs/aienergyscore.md):
#   1. the wheel, with ./build_wheel.sh at the repository root;
#   2. the image, from examples/aienergyscore/Dockerfile and a build context that holds only that wheel, at the path
#      the Dockerfile copies from (ai_energy_benchmarks/dist/ai_energy_benchmarks-<version>-py3-none-any.whl).
#
# Usage: examples/aienergyscore/build.sh [IMAGE_TAG]      (default tag: ai-energy-benchmarks-aienergyscore:<version>)
#   BASE_IMAGE=...   CUDA PyTorch base image, passed to the Dockerfile as a build argument
#   DOCKER=...       container CLI (default: docker); DOCKER=echo prints the build command instead of running it
#   PYTHON=...       interpreter for step 1 (needs the `build` module)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="$(tr -d '[:space:]' < "$repo/VERSION.txt")"
tag="${1:-ai-energy-benchmarks-aienergyscore:${version}}"
read -r -a docker <<< "${DOCKER:-docker}"

echo "== step 1/2: build the wheel"
"$repo/build_wheel.sh"
wheel="$repo/dist/ai_energy_benchmarks-${version}-py3-none-any.whl"

echo "== step 2/2: build the image $tag"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/ai_energy_benchmarks/dist"
cp "$wheel" "$context/ai_energy_benchmarks/dist/"
build_args=()
if [[ -n "${BASE_IMAGE:-}" ]]; then
    build_args+=(--build-arg "BASE_IMAGE=${BASE_IMAGE}")
fi
echo "build context (only the wheel):"
(cd "$context" && find . -type f | sed 's|^\./|  |')
"${docker[@]}" build "${build_args[@]}" -f "$here/Dockerfile" -t "$tag" "$context"
if [[ "${docker[0]}" == echo ]]; then
    echo "(dry run: DOCKER=echo printed the command; no image was built)"
    exit 0
fi
echo "Built image $tag. Run a benchmark with, e.g.:"
echo "  docker run --rm --gpus all -v \"\$PWD/results:/results\" $tag --config-name text_generation backend.model=openai/gpt-oss-20b"
