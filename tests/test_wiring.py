"""The pipeline is wired from one source: dvc.yaml is what i2s.pipeline computes, every stage reads exactly its own
params keys, defaults live once (params.yaml), and dependencies follow the code."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import nbformat
import pytest
import yaml

from i2s import detector, metrics, musicvideos, networks, params, paths, pipeline, synth, tagtable

REPO = Path(__file__).resolve().parents[1]
P = params.load(REPO / "params.yaml")
NOTEBOOK_STAGES = [n for n, s in pipeline.STAGES.items() if s.notebook]


def _parameters(nb: Path) -> dict:
    cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    return {t.targets[0].id: ast.literal_eval(t.value) for t in ast.parse(cell.source).body if isinstance(t, ast.Assign)}


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.setenv("I2S_ROOT", str(REPO))


def test_dvc_yaml_is_what_the_pipeline_computes():
    assert (REPO / "dvc.yaml").read_text() == pipeline.dvc_yaml(P), "dvc.yaml is stale: run `python -m i2s.pipeline`"


def test_every_command_is_one_short_runner_call():
    for name, st in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        cmd = st.get("do", st)["cmd"]
        assert cmd.startswith("sh i2s/stage.sh ") and len(cmd) < 60 and " -p " not in cmd, (name, cmd)


def test_the_launcher_prefers_the_projects_interpreter(tmp_path):
    import shutil
    import subprocess
    shutil.copytree(REPO / "i2s", tmp_path / "proj" / "i2s", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "proj" / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text('#!/bin/sh\necho "project python $*"\n')
    (venv / "python").chmod(0o755)
    for cwd in (tmp_path / "proj", tmp_path):  # from the project or anywhere: the script finds its project
        out = subprocess.run(["sh", str(tmp_path / "proj" / "i2s" / "stage.sh"), "04_attention"], cwd=cwd,
                             capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}).stdout
        assert out == "project python -m i2s.stage 04_attention\n"
    exps = tmp_path / "proj" / ".dvc" / "tmp" / "exps" / "tmp123"  # `dvc exp run --temp` runs in a copy in here
    shutil.copytree(REPO / "i2s", exps / "i2s", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run(["sh", "i2s/stage.sh", "01_data_stats"], cwd=exps, capture_output=True, text=True).stdout
    assert out == "project python -m i2s.stage 01_data_stats\n"


def test_interactive_plots_read_the_data_savefig_writes():
    from i2s import figures
    for (stage, name, *_), plot in zip(pipeline.PLOTS, pipeline.dvc_plots()):
        assert next(iter(plot)) == paths.relative(figures.plot_data_file(stage, name))
        assert (REPO / plot[next(iter(plot))]["template"]).is_file()


@pytest.mark.parametrize("stage", NOTEBOOK_STAGES)
def test_parameters_cell_is_exactly_the_stages_keys_with_params_yaml_values(stage):
    st, _ = pipeline.stage(stage)
    cell = _parameters(paths.notebook(stage))
    keys = pipeline.param_keys(st, P)
    assert set(cell) == set(keys), f"{stage}: parameters cell {sorted(cell)} vs params keys {sorted(keys)}"
    for name, key in keys.items():
        assert cell[name] == params.get(key, P), f"{stage}: {name} = {cell[name]!r}, params.yaml {key} = {params.get(key, P)!r}"


def test_the_runner_hands_each_stage_its_values():
    values = pipeline.param_values("07_variants@mood", P)
    assert values["name"] == "mood" and values["variant"] == P["supplementary"]["variants"]["mood"]
    assert values["hidden"] == P["lyric_model"]["hidden"] and values["attention"] == P["attention"]["attention"]
    assert "seeds" in values and values["seeds"] == P["supplementary"]["seeds"]  # not lyric_model.seeds
    assert pipeline.param_values("00_world", P) == P["world"]


CODE_DEFAULTS = [  # a default typed in code → the params.yaml key that is its source
    *[(synth.WorldParams, f.name, f"world.{f.name}") for f in dataclasses.fields(synth.WorldParams)],
    *[(musicvideos.MVParams, f.name, f"mv_world.{f.name}") for f in dataclasses.fields(musicvideos.MVParams)
      if f.name in P["mv_world"]],
    *[(networks.Config, f.name, f"lyric_model.{f.name}") for f in dataclasses.fields(networks.Config)
      if f.name in P["lyric_model"]],
    *[(networks.Config, f.name, f"attention.{f.name}") for f in dataclasses.fields(networks.Config)
      if f.name in ("attention", "top_k", "pooling")],
    (detector, "ITERATIONS", "tagger.iterations"), (detector, "BATCH_SIZE", "tagger.batch_size"),
    (detector, "LR", "tagger.lr"), (detector, "MIN_SIZE", "tagger.min_size"), (detector, "DEEP_POOL", "tagger.deep_pool"),
    (detector, "BACKBONE", "tagger.backbone"), (tagtable, "TOP_K", "tagger.top_k"), (tagtable, "TOP_K", "attention.top_k"),
    (metrics, "BOOTSTRAP_SAMPLES", "attention.bootstrap"),
]


@pytest.mark.parametrize("owner,name,key", CODE_DEFAULTS, ids=lambda x: x if isinstance(x, str) else "")
def test_code_defaults_agree_with_params_yaml(owner, name, key):
    if dataclasses.is_dataclass(owner):
        f = next(f for f in dataclasses.fields(owner) if f.name == name)
        value = f.default_factory() if f.default is dataclasses.MISSING else f.default
    else:
        value = getattr(owner, name)
    assert value == params.get(key, P), f"{owner.__name__}.{name} = {value!r} but params.yaml {key} = {params.get(key, P)!r}"


def test_every_world_and_mv_world_key_is_a_generator_setting():
    assert set(P["world"]) <= {f.name for f in dataclasses.fields(synth.WorldParams)}
    assert set(P["mv_world"]) <= {f.name for f in dataclasses.fields(musicvideos.MVParams)}


def _deps(stage):
    return set(pipeline.deps(stage, P))


def test_deps_follow_imports_assets_and_declared_reads():
    d04 = _deps("04_attention")
    assert {"notebooks/04_attention.ipynb", "i2s/networks.py", "i2s/training.py", "i2s/htmlreport.py",
            "i2s/assets/paper/paper_results.csv", "data/01_data_stats/subset.csv", "data/02_tag_detector/tags.parquet",
            "data/01_data_stats/tables/songs_gt50.csv"} <= d04
    assert "i2s/detector.py" not in d04 and "data/01_data_stats/triplets.csv" not in d04
    assert "i2s/assets/paper/paper_facts.csv" in _deps("00_world")
    assert "i2s/assets/paper/paper_results.csv" not in _deps("00_world")
    assert {f"data/07_variants/{k}" for k in P["supplementary"]["variants"]} <= _deps("07_supplementary")
    assert "data/07_variants/${key}" not in _deps("07_variants")  # its own output is not a dependency


def test_the_detector_module_is_a_dependency_of_the_stages_that_import_it_only():
    assert [n for n in pipeline.STAGES if "i2s/detector.py" in _deps(n)] == ["02_tag_detector"]


def test_paper_results_are_a_dependency_of_every_stage_that_prints_a_table_beside_the_paper():
    with_results = {n for n in pipeline.STAGES if "i2s/assets/paper/paper_results.csv" in _deps(n)}
    assert {"02_tag_detector", "03_lyric_model", "04_attention", "05_song2image", "06_mrcca",
            "07_supplementary"} <= with_results
    assert not with_results & {"00_world", "00_mv_world", "07_variants"}


def test_a_parameter_is_read_by_the_stages_that_list_it_only():
    readers = {n for n, st in pipeline.STAGES.items()
               if "lyric_model.seeds" in pipeline.param_keys(st, P, "mood").values()}
    assert readers == {"03_lyric_model"}


def test_files_named_by_parameters_become_dependencies(tmp_path):
    ck = tmp_path / "detector.pt"
    ck.write_bytes(b"x")
    p = {**P, "tagger": {**P["tagger"], "checkpoint": str(ck)}}
    assert str(ck) in pipeline.deps("02_tag_detector", p) and str(ck) not in pipeline.deps("02_tag_detector", P)
    vec = tmp_path / "w2v.bin"
    vec.write_bytes(b"x")
    p = {**P, "lyric_model": {**P["lyric_model"], "vectors": str(vec)}}
    assert all(str(vec) in pipeline.deps(s, p) for s in ("03_lyric_model", "04_attention", "05_song2image"))


def test_a_stale_stage_entry_stops_the_runner(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text().replace("- data/01_data_stats/splits.csv\n", "", 1))
    monkeypatch.setenv("I2S_ROOT", str(tmp_path))
    monkeypatch.setattr(paths, "notebook", lambda stage: REPO / "notebooks" / f"{stage}.ipynb")
    stale = [n for n in pipeline.STAGES if "data/01_data_stats/splits.csv" in pipeline.deps(n, P)][0]
    with pytest.raises(RuntimeError, match="out of date"):
        pipeline.check_current(stale, P)


@pytest.mark.parametrize("stage", list(pipeline.STAGES))
def test_every_stage_declares_what_it_reads(stage):
    code = pipeline.STAGES[stage].code_file()
    tree = ast.parse(code.read_text()) if code.suffix == ".py" else pipeline._code_tree(code)
    assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "READS" for t in n.targets)
               for n in ast.walk(tree)), f"{stage}: declare READS, the upstream artefacts it reads"


def test_every_reader_of_the_papers_numbers_is_mapped_to_its_file():
    import inspect

    from i2s import paper
    public = {n for n, f in inspect.getmembers(paper, inspect.isfunction) if f.__module__ == paper.__name__
              and not n.startswith("_")}
    assert public == set(paper.FILES), "every paper.* function must name the file it reads in paper.FILES"
