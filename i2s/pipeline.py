"""The pipeline's stages in one place, and dvc.yaml generated from them.

Each stage names its code (a notebook, or an entry function for the generators), the params.yaml keys it reads,
and the keys whose values name files it reads. Everything else DVC needs is computed, never typed:

- the `i2s` modules the code imports, transitively (lazy imports inside functions included);
- the asset files those modules read (`paths.ASSET_DIRS`, and the paper table behind each `paper.*` call);
- the upstream artefacts the code declares in `READS` (see i2s.artefacts), as the exact files;
- the files named by its file parameters, when set.

`python -m i2s.pipeline` writes dvc.yaml; a test fails when the committed dvc.yaml differs from what this module
computes, and the stage runner refuses to run a stage whose dvc.yaml entry is stale (e.g. after params.yaml
was pointed at a real dataset).
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import artefacts, paper, params, paths

PACKAGE = "i2s"
# The runner and this module: what they pass to a stage is written into dvc.yaml itself (cmd, params, deps), so a
# change to them shows there; they are not a dependency of each stage. The HTML renderer is (it writes the reports).
RUNNER = ("i2s.stage", "i2s.pipeline", "i2s.params")
LAUNCHER = "i2s/stage.sh"           # runs the runner under the project's interpreter (.venv/bin/python when there is one)
RENDERER = "i2s.htmlreport"
BUILTIN_VECTORS = ("glove-6b-50d",)   # word vectors that ship in a package, not a file of the project


@dataclass(frozen=True)
class Stage:
    name: str
    params: tuple[str, ...]           # dotted params.yaml keys it reads; a bare section name means all of its keys
    entry: str = ""                   # "module:function" for a Python stage; a notebook stage runs notebooks/<name>.ipynb
    files: tuple[str, ...] = ()       # keys (among params) whose values name files or folders it reads
    foreach: str = ""                 # a params key holding a dict: one stage per item, e.g. 07_variants@mood

    @property
    def notebook(self) -> bool:
        return not self.entry

    def code_file(self) -> Path:
        """The notebook or the entry module's file."""
        if self.notebook:
            return paths.notebook(self.name)
        return _module_file(self.entry.split(":")[0])


LYRIC_TRAINING = ("lyric_model.vectors", "lyric_model.hidden", "lyric_model.mlp_hidden", "lyric_model.max_tokens",
                  "lyric_model.loss", "lyric_model.lr", "lyric_model.rho", "lyric_model.eps",
                  "lyric_model.batch_pairs", "lyric_model.max_epochs", "lyric_model.patience",
                  "lyric_model.val_fraction", "lyric_model.chrono", "lyric_model.threads")
STAGES = {s.name: s for s in (
    Stage("00_world", ("world",), entry="i2s.synth:run_stage"),
    Stage("01_data_stats", ("data_stats", "lyric_model.vectors"),
          files=("data_stats.data_root", "data_stats.world_truth", "lyric_model.vectors")),
    Stage("02_tag_detector", ("tagger", "parallel.device"), files=("tagger.scene_graphs", "tagger.world_truth", "tagger.checkpoint")),
    Stage("03_tuning", (*LYRIC_TRAINING, "attention.attention", "attention.top_k", "attention.pooling", "tuning",
                        "parallel"),
          entry="i2s.tuning:run_stage", files=("lyric_model.vectors",)),
    Stage("03_planted", (*LYRIC_TRAINING, "attention.attention", "attention.top_k", "attention.pooling", "planted",
                         "parallel"),
          entry="i2s.planted:run_stage", files=("lyric_model.vectors",)),
    Stage("03_lyric_model", ("data_stats.world_truth", "lyric_model", "order_probe", "parallel"),
          files=("lyric_model.vectors", "data_stats.world_truth")),
    Stage("04_attention", ("data_stats.world_truth", *LYRIC_TRAINING, "attention", "parallel"),
          files=("lyric_model.vectors", "data_stats.world_truth")),
    Stage("05_song2image", ("data_stats.world_truth", *LYRIC_TRAINING, "song2image", "parallel"),
          files=("lyric_model.vectors", "data_stats.world_truth")),
    Stage("07_variants", (*LYRIC_TRAINING, "attention.attention", "attention.top_k", "attention.pooling",
                          "supplementary.seeds", "supplementary.seed", "supplementary.variants.${key}", "parallel"),
          entry="i2s.supplement:run_variant", files=("lyric_model.vectors",), foreach="supplementary.variants"),
    Stage("07_supplementary", ("data_stats.world_truth", "supplementary.seed",
                               "supplementary.variants")),
    Stage("00_mv_world", ("mv_world",), entry="i2s.musicvideos:run_stage"),
    Stage("06_mrcca", ("mrcca", "parallel.backend", "parallel.n_jobs", "parallel.scheduler"),
          files=("mrcca.mv_world_root",)),
)}


def stage(name: str) -> tuple[Stage, str]:
    """A stage by its DVC name; foreach items as '<stage>@<key>' give (stage, key)."""
    base, _, key = name.partition("@")
    if base not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    st = STAGES[base]
    if bool(key) != bool(st.foreach):
        raise KeyError(f"stage {base!r} " + (f"runs once per item of {st.foreach}: name one as {base}@<key>"
                                             if st.foreach else "has no items"))
    return st, key


# ---- parameters --------------------------------------------------------------------------------------------
def param_keys(st: Stage, p: dict, key: str = "") -> dict[str, str]:
    """Notebook/entry parameter name → dotted params key (sections expanded to their keys)."""
    out = {}
    for k in st.params:
        k = k.replace("${key}", key) if key else k
        if "." not in k:
            names = {sub: f"{k}.{sub}" for sub in params.section(k, p)}
        elif k.endswith(f".{key}") and key and st.foreach and k.startswith(st.foreach):
            names = {"variant": k}
        else:
            names = {k.rsplit(".", 1)[1]: k}
        for n, full in names.items():
            if n in out:
                raise ValueError(f"stage {st.name}: parameter {n!r} named twice ({out[n]}, {full})")
            out[n] = full
    return out


def param_values(name: str, p: dict | None = None) -> dict:
    """What the runner hands a stage: its parameters by name, from params.yaml."""
    p = params.load() if p is None else p
    st, key = stage(name)
    values = {n: params.get(k, p) for n, k in param_keys(st, p, key).items()}
    if st.foreach:
        values["name"] = key
    return values


# ---- code and its imports ----------------------------------------------------------------------------------
def _module_file(module: str) -> Path:
    rel = Path(*module.split("."))
    pkg = paths.PACKAGE.parent
    f = pkg / rel.with_suffix(".py")
    return f if f.is_file() else pkg / rel / "__init__.py"


def _code_tree(file: Path) -> ast.AST:
    if file.suffix == ".ipynb":
        import nbformat
        nb = nbformat.read(file, as_version=4)
        src = "\n".join("\n".join(ln for ln in c.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
                        for c in nb.cells if c.cell_type == "code")
        return ast.parse(src, str(file))
    return ast.parse(file.read_text(), str(file))


def _imports(tree: ast.AST, module: str = "") -> set[str]:
    """i2s modules a file imports (absolute or relative, anywhere in it)."""
    pkg = module.rpartition(".")[0] if module else PACKAGE
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([pkg] + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            for a in node.names:  # `from i2s import tags`: tags is a module
                if _module_file(f"{base}.{a.name}").is_file():
                    found.add(f"{base}.{a.name}")
    return {m for m in found if m != PACKAGE}


def closure(file: Path, exclude: tuple[str, ...] = RUNNER) -> list[str]:
    """Every i2s module the file imports, transitively, sorted (the package's __init__ included)."""
    todo, seen = list(_imports(_code_tree(file))), {PACKAGE}
    while todo:
        m = todo.pop()
        if m in seen or m in exclude:
            continue
        seen.add(m)
        todo += _imports(_code_tree(_module_file(m)), m)
    return sorted(seen)


def asset_files(modules: list[str], extra: list[Path] = ()) -> list[Path]:
    """The asset folders and paper tables the modules (and extra code files) read."""
    found = set()
    files = [_module_file(m) for m in modules] + list(extra)
    for f in files:
        if f.name in ("paths.py", "paper.py") and f.parent == paths.PACKAGE:
            continue  # where the assets are named, not read
        for node in ast.walk(_code_tree(f)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "paths" and node.attr in paths.ASSET_DIRS:
                    found.add(paths.ASSET_DIRS[node.attr])
                elif node.value.id == "paper" and node.attr in paper.FILES:
                    found.add(paper.FILES[node.attr])
    return sorted(found)


def declared_reads(file: Path, function: str = "") -> list[str]:
    """The artefact names a notebook or module declares in its `READS = (...)`."""
    for node in ast.walk(_code_tree(file)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "READS" for t in node.targets):
            names = ast.literal_eval(node.value)
            unknown = [n for n in names if n not in artefacts.ARTEFACTS]
            if unknown:
                raise ValueError(f"{file}: READS names unknown artefacts {unknown}")
            return list(names)
    return []


# ---- dvc.yaml ------------------------------------------------------------------------------------------------
def _param_file_deps(st: Stage, p: dict) -> list[str]:
    out = []
    for k in st.files:
        v = params.get(k, p)
        if not isinstance(v, str) or not v or v in BUILTIN_VECTORS:
            continue
        out.append(paths.relative(paths.resolve(v)))
    return out


def deps(name: str, p: dict | None = None) -> list[str]:
    """Every file a stage is made from, relative to the project root (foreach stages: with `${key}`)."""
    p = params.load() if p is None else p
    st = STAGES[name.partition("@")[0]]
    code = st.code_file()
    mods = closure(code)
    if st.notebook:
        mods = sorted(set(mods) | set(closure(_module_file(RENDERER))) | {RENDERER})
    files = [code] + [_module_file(m) for m in mods] + asset_files(mods, [code])
    reads = []
    for r in declared_reads(code):
        a = artefacts.ARTEFACTS[r]
        if "{name}" not in a.path:
            reads.append(artefacts.path(r))
        elif a.stage == st.name:  # the item's own output (not a read)
            continue
        else:  # every item of the foreach stage that writes it
            reads += [artefacts.path(r, name=k) for k in params.get(STAGES[a.stage].foreach, p)]
    out = [paths.relative(f) for f in files + reads] + _param_file_deps(st, p)
    return list(dict.fromkeys(out))


def _dvc_params(st: Stage) -> list[str]:
    return list(st.params)


def _outs(st: Stage) -> tuple[list, list]:
    item = "_${key}" if st.foreach else ""
    data = f"data/{st.name}" + ("/${key}" if st.foreach else "")
    outs = [data]
    if st.notebook:  # the reports are cached like the data: `dvc push` shares them, `dvc pull` brings them back
        outs += [f"figures/{st.name}", f"reports/{st.name}.ipynb", f"reports/{st.name}.html"]
    # metrics stay in git (as DVC's example projects keep them): `dvc exp show` and `dvc metrics diff` read them there
    return outs, [{f"metrics/{st.name}{item}.json": {"cache": False}}]


# Figures `dvc plots show` draws interactively from their data (figures.savefig writes data/<stage>/plots/<name>.csv
# with the columns panel, series, x, y, yerr): stage, figure, x label, y label. A new sweep is one more line.
PLOTS = (
    ("02_tag_detector", "training_curves", "iteration", "loss (rolling mean)"),
    ("03_lyric_model", "training_curves", "epoch", "loss; validation mean rank (% of pool)"),
    ("03_lyric_model", "planted_sweep", "order_signal", "R@10 (%), dagger"),
    ("06_mrcca", "fig2a_consistency_vs_k", "K", "consistency with labelers"),
    ("06_mrcca", "fig2b_consistency_vs_d", "1/d", "consistency with labelers"),
)
PLOT_TEMPLATE = "i2s/assets/plots/series.json"   # Vega-Lite: a line per series, a panel per panel, error bars


def dvc_plots() -> list:
    """dvc.yaml's `plots`: the interactive ones of PLOTS, then every notebook stage's figures as images."""
    series = [{f"data/{stage}/plots/{name}.csv": {
        "x": "x", "y": "y", "template": PLOT_TEMPLATE, "title": f"{stage}: {name.replace('_', ' ')}",
        "x_label": x_label, "y_label": y_label}} for stage, name, x_label, y_label in PLOTS]
    return series + [f"figures/{n}" for n, s in STAGES.items() if s.notebook]


def dvc_stages(p: dict | None = None) -> dict:
    """dvc.yaml's `stages`, computed."""
    p = params.load() if p is None else p
    out = {}
    for name, st in STAGES.items():
        outs, metrics = _outs(st)
        body = {"cmd": f"sh {LAUNCHER} {name}" + ("@${key}" if st.foreach else ""),
                "deps": deps(name, p), "params": _dvc_params(st), "outs": outs, "metrics": metrics}
        out[name] = {"foreach": "${" + st.foreach + "}", "do": body} if st.foreach else body
    return out


HEADER = """# Generated by `python -m i2s.pipeline` from i2s/pipeline.py and params.yaml: do not edit by hand.
# One stage per notebook (papermill, through the runner `python -m i2s.stage`, which i2s/stage.sh starts under the
# project's .venv/bin/python), each reading its own params keys; deps are computed (code, the i2s modules it imports,
# the assets they read, upstream artefacts, files named by params). Executed notebooks and their HTML renders are
# outputs only; no stage reads them.
"""


def dvc_yaml(p: dict | None = None) -> str:
    """The text of dvc.yaml."""
    doc = {"stages": dvc_stages(p), "plots": dvc_plots()}
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=120)


def check_current(name: str, p: dict | None = None) -> None:
    """Raise when dvc.yaml's entry for a stage differs from what this module computes (stale dependencies)."""
    f = paths.root() / paths.DVC_YAML
    if not f.is_file():
        return
    have = (yaml.safe_load(f.read_text()) or {}).get("stages", {}).get(name.partition("@")[0])
    want = dvc_stages(p)[name.partition("@")[0]]
    if have != want:
        raise RuntimeError(f"{f}: the entry of stage {name.partition('@')[0]} is out of date (its code, imports or the "
                           "files params.yaml names changed). Run `python -m i2s.pipeline` to rewrite dvc.yaml, "
                           "then `dvc repro` again.")


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Write dvc.yaml from the stage definitions and params.yaml.")
    ap.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml differs, write nothing")
    a = ap.parse_args(argv)
    f = paths.root() / paths.DVC_YAML
    text = dvc_yaml()
    if a.check:
        current = f.read_text() if f.exists() else ""
        print("dvc.yaml is current" if current == text else "dvc.yaml is out of date: run `python -m i2s.pipeline`")
        sys.exit(0 if current == text else 1)
    f.write_text(text)
    print(f"wrote {f}")


if __name__ == "__main__":
    main()
