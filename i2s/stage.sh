#!/bin/sh
# Every dvc.yaml command: the stage runner (python -m i2s.stage) under the project's interpreter, so that `dvc repro`
# and `dvc exp run` work as typed in a fresh shell. The first .venv/bin/python from the project folder up wins (an
# experiment running in .dvc/tmp/exps/ finds the project's); without one, the python on PATH (a conda env, CI).
dir=$(cd "$(dirname "$0")/.." && pwd)
while [ "$dir" != "/" ]; do
  if [ -x "$dir/.venv/bin/python" ]; then exec "$dir/.venv/bin/python" -m i2s.stage "$@"; fi
  dir=$(dirname "$dir")
done
exec python -m i2s.stage "$@"
