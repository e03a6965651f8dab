# Open Encoder. `make run` starts the whole encoder locally; `make test` checks it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint format docs docs-serve package bench-api bench-encode bench-parallel bench-quality bench-scale layer deploy destroy clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e .  # the `openencoder` command (openencoder_cli/)
	touch $(STAMP)

# The whole encoder locally; its state is kept in .local/state (FRESH=1 starts empty).
run: $(STAMP)
	$(PY) -m ops.local_stack $(if $(FRESH),--fresh,)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The suite in parallel on pytest-xdist workers; each module is run by one worker, in its
# order, in the order tests/conftest.py gives (which also tells how the workers share).
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The documentation site (docs/, mkdocs.yml) into site/; --strict fails on a broken link.
# tests/unit/test_docs.py runs the same build inside `make test`, and fails on a stale reference.
# The reference pages (API, CLI, configuration) are regenerated from the code first.
docs: $(STAMP)
	$(PY) -m ops.docs_reference
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	$(PY) -m ops.docs_reference
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict -a 127.0.0.1:$(or $(DOCS_PORT),8001)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-api: $(STAMP)
	$(PY) -m bench.api

bench-encode: $(STAMP)
	$(PY) -m bench.encode

# Chunked (graph) encoding against one monolithic encode, and the ladder's CPU seconds.
bench-parallel: $(STAMP)
	$(PY) -m bench.parallel

# Per-title ladders against the seeded fixed ladder: bits, VMAF, probe and measurement CPU.
bench-quality: $(STAMP)
	$(PY) -m bench.quality

# A 10-minute 1080p ladder's critical path, measured here in CPU seconds (wait4) and
# projected onto 1,000 Lambdas, and the same for a 2-hour source (see bench/scale.py).
bench-scale: $(STAMP)
	nice -n 10 $(PY) -m bench.scale

# Lambda layer zips with a static ffmpeg, for x86_64 and arm64, into dist/.
layer: $(STAMP)
	$(PY) layers/ffmpeg/build.py

# The deploy artifact, offline: chalice package + the stage's own resources as one
# CloudFormation (SAM) template, into dist/STAGE/ (see docs/guides/deploy.md).
package: $(STAMP)
	@test -n "$(STAGE)" || (echo "usage: make package STAGE=<name>" && exit 2)
	$(PY) -m ops.package --stage $(STAGE)

# Provision, publish the layer and deploy a stage: make deploy STAGE=dev
deploy: $(STAMP)
	@test -n "$(STAGE)" || (echo "usage: make deploy STAGE=<name>" && exit 2)
	$(PY) -m ops.deploy deploy --stage $(STAGE)

# Remove a stage after a confirmation; buckets with objects stay unless DELETE_BUCKETS=1
destroy: $(STAMP)
	@test -n "$(STAGE)" || (echo "usage: make destroy STAGE=<name>" && exit 2)
	$(PY) -m ops.deploy destroy --stage $(STAGE) $(if $(DELETE_BUCKETS),--delete-buckets,)

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache dist site
