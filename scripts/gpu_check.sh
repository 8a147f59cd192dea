#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one short lease: the GPU-marked tests (their
# files only: no other test file is collected, so a package the GPU tests do not need
# cannot stop them), the two default configs fitted on the GPU and tested on the CPU,
# then the GPU rows of the benchmark (benchmarks/run.py --only gpu).
# Every result is written as it comes, into gpu_results.txt, and the benchmark rows
# into gpu_benchmarks.md, one row at a time (both under "$OUT" when it is set), so a
# lease that ends early keeps what was measured. Each phase has a time limit.
# The estimate and how it was made: docs/devices.md, "The GPU check".
# By default the project's venv is installed and used. PY=python3 uses that
# interpreter instead, on a machine with no package index: the project is imported
# from this folder, and the wheels in .whl/ (scripts/gpu_wheels.sh) are installed
# beside it first.
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "${PY:-}" ]; then
  make install >/dev/null
  PY=.venv/bin/python
else
  if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target "$WORK/site" .whl/*.whl || exit 1
  fi
  export PYTHONPATH="$PWD:$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  missing=$($PY -c 'import importlib.util as u
print(*(m for m in ("jsonargparse", "optuna", "training") if u.find_spec(m) is None))')
  if [ -n "$missing" ]; then
    echo "gpu_check.sh: $PY cannot import $missing; run scripts/gpu_wheels.sh where" \
      "the package index can be reached, and copy .whl/ with this folder" >&2
    exit 1
  fi
fi
RESULTS="${OUT:-.}/gpu_results.txt"
BENCH="${OUT:-.}/gpu_benchmarks.md"
GPU_TESTS="tests/test_gpu.py tests/test_tensor_fundamentals.py"

{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  $PY -c 'import torch, lightning; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "| lightning", lightning.__version__)'
  echo
  echo "## GPU-marked tests"
  # shellcheck disable=SC2086  # the two files, split on purpose
  timeout 180 $PY -m pytest -q -m gpu -p no:cacheprovider --durations=5 $GPU_TESTS 2>&1
  for config in linear circles; do
    echo
    echo "## $config.yaml on the GPU"
    start=$EPOCHREALTIME
    timeout 30 $PY scripts/train.py fit --config configs/$config.yaml \
      --trainer.accelerator gpu --trainer.default_root_dir "$WORK" 2>&1 | grep -iE "^Done|error"
    echo "$start $EPOCHREALTIME" | awk '{printf "whole process: %.1f s\n", $2 - $1}'
    echo "## its best checkpoint tested on the CPU"
    timeout 30 $PY scripts/train.py test --config configs/$config.yaml --ckpt_path best \
      --trainer.accelerator cpu --trainer.default_root_dir "$WORK" 2>&1 | grep -iE "test/|error"
  done
  echo
  echo "## benchmark rows: $BENCH"
  timeout 170 $PY benchmarks/run.py --only gpu --repeats "${REPEATS:-2}" --out "$BENCH" 2>&1
} 2>&1 | tee "$RESULTS"
