# Convenience targets; the README commands need nothing but Python and pip.
PY := .venv/bin/python

.PHONY: setup run demo dev test lint format bench data

setup:
	python3 -m venv .venv && .venv/bin/pip install -q -r requirements.lock

demo run: setup
	$(PY) -m pipelines $@

dev: setup
	DAGSTER_HOME=$(CURDIR) .venv/bin/dagster dev -m pipelines.definitions

test: setup
	$(PY) -m pytest -q

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/sqlfluff lint sql

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:
	$(PY) bench/run.py --scale province

data:
	$(PY) scripts/make_demo_data.py
