"""Pipeline smoke test: `dvc repro` of every stage on a tiny world, in a temporary git copy of the repo.

It runs the exact commands of dvc.yaml (papermill + nbconvert), so a broken notebook or stage wiring
fails here. Params are params.yaml with tests/smoke_params.yaml laid over it. The same tiny world then serves
the reports in a browser, DVC as its users work (plots, a folder remote and a clone, an experiment) and the
explorer in a real JupyterLab.
"""
from __future__ import annotations

import csv
import io
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


GIT = ["git", "-c", "user.name=i2s test", "-c", "user.email=test@localhost", "-c", "commit.gpgsign=false"]


def _env() -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("I2S_ROOT", None)
    env.pop("PYTHONPATH", None)  # the copy's own i2s (python -m runs from the project root)
    return env


def _run(args, cwd, stdout_only=False, **kw):
    p = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(args)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p.stdout if stdout_only else p.stdout + p.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("repo")
    for name in ("i2s", "notebooks"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    for name in ("dvc.yaml", ".gitignore", "Makefile"):
        shutil.copy(REPO / name, work / name)
    params = _merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                    yaml.safe_load((REPO / "tests" / "smoke_params.yaml").read_text()))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], work)
    _run(["dvc", "init", "-q"], work)
    log = _run(["dvc", "repro"], work, timeout=1500)
    _run(["git", "add", "-A"], work)
    _run([*GIT, "commit", "-q", "-m", "tiny world"], work)  # dvc.lock and metrics/ in git, as a committed run
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


def test_every_stage_prints_its_progress(pipeline):
    work, log = pipeline
    stages = [n for n in _run(["dvc", "stage", "list", "--name-only"], work).split()]
    for name in stages:
        lines = [ln for ln in log.splitlines() if ln.startswith(f"[{name}] ")]
        assert any(" so far, " in ln and ("left" in ln or "unknown" in ln) for ln in lines), (name, lines[:5])
    notebook_lines = [ln for ln in log.splitlines() if ln.startswith("[04_attention] cell ")]
    assert len(notebook_lines) > 5 and any(" · " in ln for ln in notebook_lines)
    assert any(ln.startswith("[04_attention] ") and "%" in ln and "/" in ln for ln in log.splitlines())  # a tqdm bar


def test_dvc_metrics_and_plots_work(pipeline):
    work, _ = pipeline
    assert "01_data_stats" in _run(["dvc", "metrics", "show"], work)
    _run(["dvc", "plots", "show", "-o", "plots_html"], work)
    assert (work / "plots_html" / "index.html").exists()
    shown = json.loads(_run(["dvc", "plots", "show", "--json"], work, stdout_only=True))
    assert not shown.get("errors"), shown.get("errors")
    interactive = {k: v for k, v in shown["data"].items() if k.startswith("data/") and k.endswith(".csv")}
    assert len(interactive) == 5, list(shown["data"])
    for name, spec in interactive.items():  # a Vega-Lite spec holding the figure's points, a line per series
        values = spec[0]["content"]["data"]["values"]
        assert values and {"panel", "series", "x", "y"} <= set(values[0]), name
        assert spec[0]["content"]["spec"]["layer"][0]["encoding"]["color"]["field"] == "series"
    k_sweep = interactive["data/06_mrcca/plots/fig2a_consistency_vs_k.csv"][0]["content"]["data"]["values"]
    assert {float(v["x"]) for v in k_sweep} == {3.0, 4.0}  # smoke params: K from 3 to 4


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


# ---- DVC the way its users work: a folder remote, a fresh clone, an experiment ------------------------------------
@pytest.fixture(scope="module")
def clone(pipeline, tmp_path_factory):
    """The tiny world pushed to a folder remote (`make remote`), then a fresh git clone that `dvc pull`s it."""
    work, _ = pipeline
    remote = tmp_path_factory.mktemp("dvc_remote")
    _run(["make", "-s", "remote", f"REMOTE={remote}"], work)
    _run([*GIT, "commit", "-q", "-am", "DVC remote"], work)  # .dvc/config: the remote travels with the repo
    pushed = _run(["dvc", "push"], work)
    assert "pushed" in pushed, pushed
    copy = tmp_path_factory.mktemp("clone") / "repo"
    _run(["git", "clone", "-q", str(work), str(copy)], work.parent)
    _run(["dvc", "pull"], copy)
    return copy


def test_a_fresh_clone_pulls_every_result_and_reruns_nothing(clone):
    assert "up to date" in _run(["dvc", "status"], clone)
    assert "Running stage" not in _run(["dvc", "repro"], clone)
    assert (clone / "reports" / "04_attention.html").exists() and list((clone / "figures" / "06_mrcca").glob("*.png"))
    assert json.loads((clone / "metrics" / "01_data_stats.json").read_text())["loader_truth_mismatches"] == 0


def test_an_experiment_on_one_stage_shows_in_exp_show(clone):
    out = _run(["dvc", "exp", "run", "-S", "data_stats.split_seed=1", "01_data_stats"], clone, timeout=600)
    assert "Running stage '01_data_stats'" in out and "Running stage '02_tag_detector'" not in out, out[-2000:]
    table = _run(["dvc", "exp", "show", "--csv"], clone)
    # csv, not split(","): list-valued params (e.g. `splits`) are quoted fields with commas inside
    header, *rows = list(csv.reader(io.StringIO(table.strip())))
    col = header.index("data_stats.split_seed")
    assert {r[col] for r in rows} >= {"0", "1"}, table  # the committed run and the experiment, side by side
    assert any(h.startswith("triplets") or h.endswith("triplets") for h in header), header  # 01's metrics columns


# ---- the explorer in a real JupyterLab, driven by headless Chromium --------------------------------------------------
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run")


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(pipeline, tmp_path):
    """JupyterLab serving the tiny world on a free loopback port with a token; its config, data, runtime and
    settings in a temporary folder (nothing of the user's is read or written)."""
    import secrets
    import time
    import urllib.request
    work, _ = pipeline
    port, token, home = _free_port(), secrets.token_hex(16), tmp_path / "jupyter"
    dirs = {k: home / k for k in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
    for d in dirs.values():
        d.mkdir(parents=True)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
           "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
           "PYTHONPATH": str(work),  # the kernel runs in notebooks/: it must import the copy's i2s
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("I2S_ROOT", None)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--ServerApp.allow_root=True",  # CI runs as root
           f"--LabApp.user_settings_dir={dirs['settings']}", f"--LabApp.workspaces_dir={dirs['workspaces']}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "jupyterlab.log").read_text()[-3000:]
                time.sleep(0.5)
        yield url, token, tmp_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _lab_browser(profile: Path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not (browser and driver):
        pytest.skip("headless Chromium is not installed (Debian packages chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def _wait(drv, what, timeout=120, message=""):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(drv, timeout, poll_frequency=0.25).until(lambda d: what(d), message)


def _widget(drv, css):
    return drv.find_element("css selector", css)


_SONG_ROWS = """return Array.from(document.querySelectorAll('.widget-html table'))
  .filter(t => t.innerText.includes('cosine'))
  .flatMap(t => Array.from(t.querySelectorAll('tr')).filter(r => r.querySelector('td')).map(r => r.cells[arguments[0]].innerText));"""


def _songs(drv, column: int = 1) -> list[str]:
    """The ranked songs' titles (column 1) or lyrics (3), read in one script: the widget re-renders while we read."""
    return [t.split("\n")[0] for t in drv.execute_script(_SONG_ROWS, column)]


def _errors_on_page(drv) -> list[str]:
    text = drv.execute_script("return Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText)")
    return [t[:500] for t in text if "Traceback" in t or "Error" in t.split("\n")[0]]


def test_the_explorer_works_in_jupyterlab(jupyterlab):
    import time

    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    url, token, tmp = jupyterlab
    shots = tmp / "screenshots"
    shots.mkdir()
    photo = tmp / "$x$ my photo.png"  # matplotlib would read $x$ as math text
    from PIL import Image
    import numpy as np
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(photo)
    drv = _lab_browser(tmp / "chromium-profile")
    try:
        drv.get(f"{url}/lab/tree/notebooks/explore.ipynb?token={token}")
        _wait(drv, lambda d: d.find_elements("css selector", ".jp-Notebook .jp-Cell"), 180, "the notebook did not open")
        _widget(drv, ".jp-Notebook").click()  # Run All goes to the kernel's queue: no need to wait for it to start
        drv.find_element("xpath", "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
        drv.find_element("xpath", "//li[contains(@class,'lm-Menu-item')][.//*[text()='Run All Cells']]").click()
        _wait(drv, lambda d: len(_songs(d)) > 0, 300, "no songs listed after Run All")
        drv.save_screenshot(str(shots / "1_run_all.png"))
        def status(d):
            return _widget(d, ".i2s-status").text

        def song_box(d):
            return d.find_element("xpath", "//div[contains(@class,'widget-html')][.//th[contains(., 'cosine')]]").text
        n = int(drv.find_element("xpath", "//*[contains(., 'library of') and contains(@class, 'widget-html')]")
                .text.split("library of ")[1].split()[0])
        assert len(_songs(drv)) == min(10, n), _songs(drv)
        # pick a photo of the world: the random-photo button sets the combobox and re-ranks
        before = status(drv)
        drv.find_element("xpath", "//button[contains(., 'random photo')]").click()
        _wait(drv, lambda d: status(d) != before and "tagged in" in status(d), 120, "the random photo was not tagged")
        drv.save_screenshot(str(shots / "2_random_photo.png"))
        # switching the model re-ranks the songs
        shown = _songs(drv)
        Select(drv.find_element("css selector", ".widget-dropdown select")).select_by_visible_text("BoW")
        _wait(drv, lambda d: _songs(d) and _songs(d) != shown, 120, "switching the model did not change the list")
        assert len(_songs(drv)) == min(10, n)
        drv.save_screenshot(str(shots / "3_model_bow.png"))
        # upload a photo through the browser
        # ipywidgets' FileUpload keeps its <input type=file> out of the page and clicks it: put it in the page
        # instead of opening the native dialog, then type the file's path into it
        drv.execute_script("""const click = HTMLInputElement.prototype.click;
          HTMLInputElement.prototype.click = function () {
            if (this.type !== 'file') return click.call(this);
            this.id = 'i2s-upload'; this.style.display = 'block'; document.body.appendChild(this); };""")
        drv.find_element("xpath", "//button[contains(@class,'widget-upload')]").click()
        drv.find_element("css selector", "#i2s-upload").send_keys(str(photo))
        _wait(drv, lambda d: "not in the library" in song_box(d) and "tagged in" in status(d), 120,
              f"the upload was not tagged: {status(drv)}")
        assert "tagged in" in status(drv) and len(_songs(drv)) == min(10, n), status(drv)
        drv.save_screenshot(str(shots / "4_upload.png"))
        # from a typed lyric to photos: words of the first listed song's lyric
        words = _songs(drv, 3)[0].split()[:8]
        box = drv.find_element("css selector", ".widget-textarea textarea")
        box.send_keys(" ".join(words))
        box.send_keys(Keys.TAB)
        time.sleep(1)  # the textarea's value reaches the kernel before the click does
        drv.execute_script("arguments[0].click()", drv.find_element("xpath", "//button[contains(., 'find photos')]"))
        _wait(drv, lambda d: "ranked the photos" in status(d), 120, f"no photos for the typed lyric: {status(drv)}")
        strip = drv.find_elements("xpath", "//div[contains(@class,'widget-html')]//div[img]")
        assert len(strip) >= 1 and all(i.get_attribute("naturalWidth") != "0" for i in
                                       drv.find_elements("xpath", "//div[contains(@class,'widget-html')]//div/img"))
        drv.execute_script("document.querySelector('.jp-WindowedPanel-outer, .jp-Notebook').scrollTop = 1e6")
        drv.save_screenshot(str(shots / "5_lyric_to_photos.png"))
        assert not _errors_on_page(drv), _errors_on_page(drv)
        severe = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        drv.save_screenshot(str(shots / "last.png"))
        drv.quit()
    assert len(list(shots.glob("*.png"))) == 6
    print(f"screenshots: {shots}")
