#!/usr/bin/env bash
# The GPU checks in one run: the tests marked gpu, then every benchmark's GPU rows next to
# the CPU rows they are compared with (same run, same machine). Needs a CUDA device and the
# gpu extra: pip install ".[gpu,test]" (CUDA 12) or ".[gpu-cuda13,test]" (CUDA 13).
#
#   bash benchmarks/gpu_checks.sh      # the CPU rows (full mode at 640×480) take most of its time
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -m gpu -q -rs
python benchmarks/bench_graph.py --sizes 160 320 640 --methods shift-invert --devices cpu gpu \
    --skip-pymatting
python benchmarks/bench_sss.py --images coffee astronaut --sizes 320 640 --devices cpu gpu \
    --reseed-sizes
python benchmarks/bench_matting.py --sizes 640 1280 --gpu --repeat 3
