"""Pipeline smoke test: `dvc repro` of every stage on a tiny world, in a temporary copy of the repo.

It runs the exact commands of dvc.yaml (papermill + nbconvert), so a broken notebook or stage wiring
fails here. Params are params.yaml with tests/smoke_params.yaml laid over it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def _run(args, cwd, **kw):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("I2S_ROOT", None)
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(args)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("repo")
    for name in ("i2s", "notebooks"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")
    params = _merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                    yaml.safe_load((REPO / "tests" / "smoke_params.yaml").read_text()))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "init", "--no-scm", "-q"], work)
    log = _run(["dvc", "repro"], work, timeout=1500)
    return work, log


def test_every_stage_ran_and_wrote_its_outputs(pipeline):
    work, _ = pipeline
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    for name, st in stages.items():
        for out in st.get("outs", []):
            path = out if isinstance(out, str) else next(iter(out))
            assert (work / path).exists(), f"{name} did not write {path}"
        for m in st.get("metrics", []):
            path = m if isinstance(m, str) else next(iter(m))
            assert json.loads((work / path).read_text()), f"{name}: empty metrics"


def test_rendered_reports_show_every_figure_and_no_errors(pipeline):
    work, _ = pipeline
    for html in (work / "reports").glob("[0-9][0-9]_*.html"):
        page = html.read_text()
        saved = len(list((work / "figures" / html.stem).glob("*.png")))
        assert saved > 0, f"{html.stem} saved no figure"
        assert page.count("data:image/png;base64") >= saved, f"{html.name} shows fewer figures inline than it saved"
        assert "Traceback" not in page and 'class="ansi-red-fg">Error' not in page


def test_data_stats_metrics_match_the_world(pipeline):
    work, _ = pipeline
    m = json.loads((work / "metrics" / "01_data_stats.json").read_text())
    assert m["loader_truth_mismatches"] == 0
    assert m["triplets"] + m["rejected"] == m["raw_rows"]
    assert m["synthetic"] is True


def test_second_repro_reruns_nothing(pipeline):
    work, _ = pipeline
    out = _run(["dvc", "repro"], work)
    assert "Running stage" not in out, out
    assert "up to date" in _run(["dvc", "status"], work)


def test_dvc_metrics_and_plots_work(pipeline):
    work, _ = pipeline
    assert "01_data_stats" in _run(["dvc", "metrics", "show"], work)
    _run(["dvc", "plots", "show", "-o", "plots_html"], work)
    assert (work / "plots_html" / "index.html").exists()


def test_reports_index(pipeline):
    work, _ = pipeline
    _run([sys.executable, "-m", "i2s.site"], work)
    page = (work / "reports" / "index.html").read_text()
    assert 'href="01_data_stats.html"' in page


# ---- the reports in a real browser -------------------------------------------------------------------------------
def _chromium():
    """A headless Chromium driven through the Debian chromedriver, or a skip saying why there is none."""
    import shutil
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not (browser and driver):
        pytest.skip("headless Chromium is not installed and could not be installed (Debian packages chromium and "
                    "chromium-driver; `make test` installs them with apt-get when apt is available)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        opts.add_argument(a)
    # an explicit driver path: Selenium Manager is skipped and never tries to download a driver or browser
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


_PAGE_STATE = """return {ready: document.readyState,
  images: Array.from(document.images).map(i => [i.alt || i.src.slice(0, 60), i.complete, i.naturalWidth]),
  links: Array.from(document.links).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id],[name]')).map(e => e.id || e.getAttribute('name')),
  height: document.documentElement.scrollHeight};"""


def _check_page(drv, page: Path, shots: Path) -> list[Path]:
    """Open a page, check that every image decoded and every link resolves; save a full-page screenshot.
    Returns the local pages it links to."""
    from urllib.parse import unquote, urlparse
    drv.get(page.as_uri())
    state = drv.execute_script(_PAGE_STATE)
    assert state["ready"] == "complete"
    broken = [(name, done, w) for name, done, w in state["images"] if not (done and w > 0)]
    assert not broken, f"{page.name}: images that did not load: {broken}"
    linked = []
    for href in state["links"]:
        u = urlparse(href)
        if u.scheme == "file":
            target = Path(unquote(u.path))
            assert target.exists(), f"{page.name} links to a missing file: {target}"
            if u.fragment and target == page:
                # as a browser does: the fragment as written, else percent-decoded (nbconvert's ids keep the %XX)
                assert {u.fragment, unquote(u.fragment)} & set(state["ids"]), f"{page.name}: anchor #{u.fragment} has no target"
            if target != page and target.suffix == ".html":
                linked.append(target)
        else:  # no internet in CI: an outside link must at least be a complete URL
            assert u.scheme in ("http", "https", "mailto") and (u.netloc or u.scheme == "mailto"), f"{page.name}: bad link {href}"
    drv.set_window_size(1280, min(state["height"], 12000))
    shot = shots / f"{page.stem}.png"
    assert drv.save_screenshot(str(shot)) and shot.stat().st_size > 10_000, f"no screenshot of {page.name}"
    return linked


def test_reports_open_in_a_browser_with_every_image_and_link(pipeline):
    work, _ = pipeline
    _run([sys.executable, "-m", "i2s.site"], work)
    index = work / "reports" / "index.html"
    shots = work / "reports" / "screenshots"
    shots.mkdir(exist_ok=True)
    drv = _chromium()
    try:
        linked = _check_page(drv, index, shots)
        rendered = sorted((work / "reports").glob("[0-9][0-9]_*.html"))
        assert sorted(set(linked)) == rendered, "the index must link every rendered report"
        cards = drv.find_elements("css selector", "li[id]")
        assert len(cards) == len(rendered)
        for card in cards:  # a headline table beside the paper's numbers and a thumbnail in every card
            assert card.find_elements("tag name", "img"), f"card {card.get_attribute('id')} has no figure"
            tab = card.find_element("css selector", ".tab").text
            assert "paper" in tab and "synthetic" in tab, f"card {card.get_attribute('id')}: {tab[:300]}"
        for page in rendered:
            _check_page(drv, page, shots)
    finally:
        drv.quit()
    print(f"screenshots: {shots}")


def _widget_html(nb_path: Path) -> str:
    import nbformat
    nb = nbformat.read(nb_path, as_version=4)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    outputs = [str(o.get("data", o.get("text", ""))) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return "\n".join([v["state"].get("value", "") for v in state.values() if v["model_name"] == "HTMLModel"] + outputs)


def test_explore_notebook_runs_top_to_bottom_and_says_what_is_missing(pipeline):
    work, _ = pipeline
    models_dir = work / "data" / "04_attention" / "models"
    assert any(models_dir.glob("*__*.pt")), "notebook 04 must save its models with persistence.save_model (issue #6)"
    out = work / "explore_out.ipynb"
    cmd = ["papermill", "notebooks/explore.ipynb", str(out), "--cwd", ".", "--no-progress-bar"]
    _run(cmd, work, timeout=600)
    page = _widget_html(out)
    assert "**Ready**" in page and "library of" in page and "The photo's own song is at rank" in page, page[:2000]
    assert "data:image/png;base64," in page and "Traceback" not in page
    aside = work / "models_aside"
    models_dir.rename(aside)
    try:  # without the models: no crash, and the notebook says what to run
        _run(cmd, work, timeout=600)
        page = _widget_html(out)
        assert "Nothing to explore yet" in page and "make reproduce" in page and "04_attention/models" in page
    finally:
        aside.rename(models_dir)
