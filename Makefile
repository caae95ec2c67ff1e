# The two commands a newcomer types: `make reproduce` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
# where `make remote` points DVC: a folder by default; any URL DVC takes (s3://bucket/path, gs://…, ssh://host/path)
REMOTE ?= $(abspath ..)/i2s-dvc-storage

.PHONY: install reproduce test test-fast browser corpora bench notebooks strip dvc.yaml clean-reports remote

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision pinned in pyproject.toml (2.14.1 / 0.29.1); pip takes them from the local disk here.
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Regenerate every table, figure and report: dvc.yaml from params.yaml, dvc repro, then the reports index.
reproduce: install dvc.yaml
	dvc repro
	$(PY) -m i2s.site

## Unit tests and the pipeline smoke test (every notebook on a tiny world).
test: install browser corpora
	$(PY) -m pytest

## The unit tests alone (skips the 6-minute pipeline smoke test, marked slow).
test-fast: install
	$(PY) -m pytest -m "not slow"

## dvc.yaml from the stage definitions (i2s/pipeline.py) and params.yaml: its deps follow the code and the files
## params.yaml names (e.g. a real dataset).
dvc.yaml: install
	$(PY) -m i2s.pipeline

## Headless Chromium for the reports' browser test (Debian packages). Never fails the run: without apt (or root)
## the test skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); LOG=$$(mktemp); \
	  echo "installing chromium and chromium-driver (apt-get) for the reports' browser test"; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	      --no-install-recommends chromium chromium-driver fonts-dejavu-core; } >$$LOG 2>&1 \
	    || { tail -n 5 $$LOG; echo "could not install chromium: the browser test will be skipped"; }; \
	else echo "no apt-get here: the browser test needs chromium and chromedriver on PATH, else it is skipped"; fi

## Real English song text for the preprocessing test (Debian's fortunes: songs-poems). Never fails the run.
corpora:
	@if [ -f /usr/share/games/fortunes/songs-poems ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); LOG=$$(mktemp); \
	  echo "installing Debian's fortunes (real song text for the preprocessing test)"; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	      fortunes; } >$$LOG 2>&1 || { tail -n 5 $$LOG; echo "could not install fortunes: its test will be skipped"; }; \
	else echo "no apt-get here: the real-text preprocessing test is skipped"; fi

## Every benchmark (benchmarks/bench_*.py), printing its ratios against a baseline measured in the same run.
bench: install
	$(PY) -m pytest benchmarks -q -s

## Configure the DVC remote `storage` (the default for dvc push/pull) in .dvc/config: `make remote` for a folder
## beside the project, `make remote REMOTE=/mnt/shared/i2s` or `REMOTE=s3://bucket/i2s` (S3/GCS/SSH need DVC's plugin:
## .venv/bin/pip install dvc-s3, dvc-gs or dvc-ssh). Commit .dvc/config to share it, then `dvc push`.
remote:
	dvc remote add --default --force storage $(REMOTE)
	@echo "DVC remote 'storage' = $(REMOTE). Next: dvc push (send data, figures, reports), and in a clone: dvc pull"

## Sync the paired notebooks (.py percent files are the editable source).
notebooks: install
	jupytext --sync notebooks/*.ipynb

## Remove outputs from committed notebooks.
strip: install
	jupyter nbconvert --clear-output --inplace notebooks/*.ipynb
