"""The stage runner: `python -m i2s.stage <stage>` is every dvc.yaml command.

It reads the stage's keys from params.yaml, refuses to run when the stage's dvc.yaml entry is stale, and then
either executes the stage's notebook with papermill (the values as parameters, so the executed copy records
what it ran with) and renders it to HTML, or calls the stage's entry function with the same values.

While a stage runs, the runner prints plain progress lines on its stderr (the terminal of `dvc repro`): the
notebook's section and cell, the kernel's tqdm bars as they move (the executed notebook keeps its own widget
bars), and the time left, estimated from the same stage's last run on this machine.
"""
from __future__ import annotations

import argparse
import html
import importlib
import json
import os
import sys
import threading
import time

from . import artefacts, params, paths, pipeline

ENGINE = "i2s-progress"
TIMES = "stage_times.json"   # under reports/: each stage's last duration (and its cells'), for the estimates


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class Progress:
    """Plain progress lines for one stage on a stream: cells, tqdm widget bars, and a heartbeat in long cells."""

    def __init__(self, stage: str, cells: list | None = None, previous: dict | None = None, out=None,
                 every: float = 60.0, bar_every: float = 20.0):
        self.stage, self.out, self.every, self.bar_every = stage, out or sys.stderr, every, bar_every
        self.use_cells(cells or [])
        self.previous = previous or {}
        self.t0 = self.last = time.perf_counter()
        self.section, self.cell, self.cell_t0 = "", None, self.t0
        self.durations: dict[int, float] = {}
        self._bars: dict[str, tuple[str, float]] = {}  # bar → (last text said, when)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def use_cells(self, cells: list) -> None:
        """The cells of the notebook being run (papermill's copy, its injected parameters included)."""
        self.cells = list(cells)
        self.code = [i for i, c in enumerate(self.cells) if c.get("cell_type") == "code"]

    def say(self, text: str) -> None:
        """One line: [stage] text · elapsed · time left."""
        with self._lock:
            self.out.write(f"[{self.stage}] {text} · {_minutes(time.perf_counter() - self.t0)} so far, {self.left()}\n")
            self.out.flush()
            self.last = time.perf_counter()

    def left(self) -> str:
        """The time left: the last run's remaining cell times (or its total); on a first run, the cells done."""
        now = time.perf_counter()
        cells = self.previous.get("cells")
        if cells and len(cells) == len(self.cells) and self.cell is not None:
            rest = sum(cells[self.cell + 1:]) + max(0.0, cells[self.cell] - (now - self.cell_t0))
            return f"about {_minutes(rest)} left (last run's cell times)"
        if self.previous.get("seconds"):
            return f"about {_minutes(max(0.0, self.previous['seconds'] - (now - self.t0)))} left (last run took " \
                   f"{_minutes(self.previous['seconds'])})"
        # no pace from cell counts: one cell may hold the whole stage (a sweep), so such a guess misleads;
        # a tqdm bar's own line gives its estimate
        done = sum(1 for i in self.code if i in self.durations)
        return f"time left unknown (first run here; {done}/{len(self.code)} cells done)" if self.code else \
            "time left unknown (first run here)"

    def cell_start(self, cell, cell_index: int, **_) -> None:
        """nbclient's on_cell_start hook: say which section and cell starts."""
        if cell.get("cell_type") == "markdown":
            heading = next((ln.lstrip("#").strip() for ln in cell.source.splitlines() if ln.startswith("#")), "")
            self.section = heading or self.section
        self.cell, self.cell_t0 = cell_index, time.perf_counter()
        if cell.get("cell_type") == "code" and cell_index in self.code:
            self.say(f"cell {self.code.index(cell_index) + 1}/{len(self.code)}" + (f" · {self.section}" if self.section else ""))

    def cell_executed(self, cell, cell_index: int, **_) -> None:
        """nbclient's on_cell_executed hook: record the cell's time."""
        self.durations[cell_index] = time.perf_counter() - self.cell_t0

    def widget(self, state: dict, comm_id: str) -> None:
        """A widget changed in the kernel: when it is the right-hand text of a tqdm bar (an HBox of HTML, progress,
        HTML; tqdm sets that text last), say the bar, at most every bar_every seconds per bar, and when it ends."""
        ref = f"IPY_MODEL_{comm_id}"
        for box_id, box in state.items():
            kids = box.get("children") or []
            if box.get("_model_name") != "HBoxModel" or len(kids) != 3 or kids[2] != ref:
                continue
            left, bar, right = (state.get(k.removeprefix("IPY_MODEL_"), {}) for k in kids)
            if bar.get("_model_name") != "FloatProgressModel" or not right.get("value"):
                continue
            text = html.unescape(f"{left.get('value', '')} {right['value']}").replace("\u2007", " ").strip()
            last_text, last_t = self._bars.get(box_id, ("", -1e9))
            done = bool(bar.get("max")) and bar.get("value", 0) >= bar["max"]
            if text != last_text and (done or time.perf_counter() - last_t >= self.bar_every):
                self.say(" ".join(text.split()))
                self._bars[box_id] = (text, time.perf_counter())

    def heartbeat(self) -> None:
        """Say something at least every `every` seconds until stopped (a long cell, an entry function)."""
        while not self._stop.wait(min(self.every, 5.0)):
            if time.perf_counter() - self.last >= self.every:
                self.say("still running" + (f" cell {self.code.index(self.cell) + 1}/{len(self.code)}"
                                             if self.cell in self.code else "") + (f" · {self.section}" if self.section else ""))

    def __enter__(self):
        threading.Thread(target=self.heartbeat, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def record(self) -> dict:
        """This run's times, as `previous` for the next run."""
        total = time.perf_counter() - self.t0
        return {"seconds": total, "cells": [self.durations.get(i, 0.0) for i in range(len(self.cells))] or None}


def _engine():
    """papermill's nbclient engine whose client also tells a Progress about widget changes (tqdm bars)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine
    from papermill.log import logger
    from papermill.utils import remove_args
    from traitlets import Any

    class Client(PapermillNotebookClient):
        progress = Any(None)

        def papermill_execute_cells(self):
            if self.progress is not None:
                self.progress.use_cells(self.nb.cells)
            super().papermill_execute_cells()

        def handle_comm_msg(self, outs, msg, cell_index):
            super().handle_comm_msg(outs, msg, cell_index)
            if self.progress is not None and "state" in msg["content"].get("data", {}):
                self.progress.widget(self.widget_state, msg["content"]["comm_id"])

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                     start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            return Client(nb_man, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                          log=logger, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                          **kwargs).execute()
    return Engine


def execute(notebook, out, values: dict, progress: Progress, cwd=None) -> None:
    """Execute a notebook with papermill into `out`, telling `progress` about its cells and tqdm bars."""
    import papermill
    from papermill.engines import papermill_engines
    papermill_engines.register(ENGINE, _engine())
    papermill.execute_notebook(str(notebook), str(out), parameters=values, cwd=str(cwd or paths.root()),
                               progress_bar=False, kernel_name="python3", engine_name=ENGINE, progress=progress,
                               on_cell_start=progress.cell_start, on_cell_executed=progress.cell_executed)


def _times() -> dict:
    f = paths.reports() / TIMES
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return {}


def _save_time(name: str, record: dict) -> None:
    f = paths.reports() / TIMES
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({**_times(), name: record}, indent=1, sort_keys=True) + "\n")


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
    with Progress(name, previous=_times().get(name)) as progress:
        progress.say(f"starting {'notebook ' + paths.relative(code) if st.notebook else st.entry}")
        if st.notebook:
            from . import htmlreport
            out = paths.executed(name)
            out.parent.mkdir(parents=True, exist_ok=True)
            execute(code, out, values, progress)
            progress.say("rendering the HTML report")
            htmlreport.render(out)
        else:
            module, _, function = st.entry.partition(":")
            getattr(importlib.import_module(module), function)(values)
    _save_time(name, progress.record())
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
