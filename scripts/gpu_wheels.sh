#!/usr/bin/env bash
# For a GPU machine with no package index whose Python has torch, Lightning,
# torchmetrics, scikit-learn, pandas and matplotlib but not the rest of the project's
# needs: downloads their wheels here into .whl/, at the versions constraints.txt pins,
# for that machine's Python (PYTHON_VERSION, default 3.12) on x86-64. .whl/ is not
# committed: copy it with the folder. scripts/gpu_check.sh installs the wheels there. Without them LightningCLI (jsonargparse) cannot parse a config,
# and pytest cannot collect the sweep tests (Optuna).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_VERSION="${PYTHON_VERSION:-3.12}"
PYTHON="${PYTHON:-.venv/bin/python}"
NEEDED="jsonargparse docstring_parser typeshed_client optuna alembic SQLAlchemy Mako colorlog"

pins=()
for name in $NEEDED; do
  pin=$(grep -i -E "^${name}==" constraints.txt) || {
    echo "gpu_wheels.sh: constraints.txt pins no version of $name; add one" >&2
    exit 1
  }
  pins+=("$pin")
done

platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
# Into a new folder that replaces .whl/ only once every wheel is there.
new=$(mktemp -d .whl.XXXXXX)
trap 'rm -rf "$new"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "$PYTHON_VERSION" --implementation cp "${platforms[@]}" -d "$new" "${pins[@]}"
chmod 755 "$new"  # mktemp's folder is its owner's alone
rm -rf .whl
mv "$new" .whl
ls .whl
