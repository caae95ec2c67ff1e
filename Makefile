# The two commands a newcomer types: `make reproduce` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install reproduce test bench notebooks strip clean-reports

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision pinned in pyproject.toml (2.14.1 / 0.29.1); pip takes them from the local disk here.
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Regenerate every table, figure and report: dvc repro, then the reports index.
reproduce: install
	dvc repro
	$(PY) -m i2s.report index

## Unit tests and the pipeline smoke test (every notebook on a tiny world).
test: install
	$(PY) -m pytest

## Throughput benchmarks (ratios against a baseline measured in the same run).
bench: install
	$(PY) -m pytest benchmarks -q -s

## Sync the paired notebooks (.py percent files are the editable source).
notebooks: install
	jupytext --sync notebooks/*.ipynb

## Remove outputs from committed notebooks.
strip: install
	jupyter nbconvert --clear-output --inplace notebooks/*.ipynb
