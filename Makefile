# fercourse: the two commands in the README are `make demo` and `make test`.
# Both create the virtual environment first when it is missing or pyproject.toml changed.

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    ?= papermill_runs/auto.yaml

.PHONY: help setup demo test test-fast lint format notebooks-clean bench clean-outputs student

help:
	@echo "make demo    set up, then run every notebook headless ($(RUN)); prints the time"
	@echo "make test    set up, then run the whole test suite (unit, notebooks via nbval, browser, SLURM, ruff)"
	@echo "make test-fast  the suite without training-heavy and browser tests"
	@echo "make student the student edition in student/ (solutions replaced by ..., no answer keys)"
	@echo "make notebooks-clean  strip outputs and counts after editing a notebook in JupyterLab"
	@echo "make lint | format | bench"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (or run: make PYTHON=python3 ...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (fercourse)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m fercourse run $(RUN)

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest --durations=15 --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg tests notebooks

test-fast: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -m "not slow and not browser" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

student: $(STAMP)
	$(PY) -m fercourse student student/

notebooks-clean: $(STAMP)
	$(PY) tools/clean_notebooks.py

bench: $(STAMP)
	$(PY) -m fercourse bench train
	$(PY) -m fercourse bench mirror

clean-outputs:
	rm -rf outputs/*/
