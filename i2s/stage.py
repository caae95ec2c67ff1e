"""The stage runner: `python -m i2s.stage <stage>` is every dvc.yaml command.

It reads the stage's keys from params.yaml, refuses to run when the stage's dvc.yaml entry is stale, and then
either executes the stage's notebook with papermill (the values as parameters, so the executed copy records
what it ran with) and renders it to HTML, or calls the stage's entry function with the same values.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from . import artefacts, params, paths, pipeline


def run(name: str, p: dict | None = None, check: bool = True) -> None:
    """Run one stage (a foreach item as '<stage>@<key>') from the project root."""
    p = params.validate(params.load() if p is None else p)
    st, key = pipeline.stage(name)
    if check:
        pipeline.check_current(name, p)
    values = pipeline.param_values(name, p)
    code = st.code_file()
    os.environ[artefacts.READS_ENV] = ",".join(pipeline.declared_reads(code))
    t0 = time.perf_counter()
    print(f"[{name}] starting ({'notebook ' + paths.relative(code) if st.notebook else st.entry})", flush=True)
    if st.notebook:
        import papermill
        from . import htmlreport
        out = paths.executed(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        papermill.execute_notebook(str(code), str(out), parameters=values, cwd=str(paths.root()),
                                   progress_bar=False, kernel_name="python3")
        htmlreport.render(out)
    else:
        module, _, function = st.entry.partition(":")
        getattr(importlib.import_module(module), function)(values)
    print(f"[{name}] done in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)


def check(name: str, values: dict) -> None:
    """Validate a stage's parameter values (e.g. a notebook's `globals()` when it runs on its own in JupyterLab)
    against the params schema: the runner's checks, with the runner's messages."""
    p = params.load() if paths.params_file().is_file() else None
    st, key = pipeline.stage(name)
    keys = pipeline.param_keys(st, p, key) if p is not None else {}
    for n, k in keys.items():
        if n in values:
            params.check_value(k, params.rule(k), values[n])


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run one pipeline stage with its params.yaml values.")
    ap.add_argument("stage", help="a stage of dvc.yaml, e.g. 04_attention or 07_variants@mood")
    ap.add_argument("--no-check", action="store_true", help="run even if the stage's dvc.yaml entry is stale")
    a = ap.parse_args(argv)
    try:
        run(a.stage, check=not a.no_check)
    except (KeyError, RuntimeError, FileNotFoundError, ValueError) as e:  # ParamsError is a ValueError
        if os.environ.get("I2S_DEBUG"):
            raise
        print(f"[{a.stage}] error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
