# Two commands a new user needs: `make run` (local service) and `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

NODE_STAMP := node_modules/.installed

.PHONY: venv node run test lint typecheck openapi bench reliability synth clean mutation

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# The cdk CLI and the RDS CA bundle shipped in the Lambda layer (package.json).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node: $(NODE_STAMP)

run: $(STAMP)
	$(BIN)/cardstatus local

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/cardstatus/python/cardstatus functions infra

openapi: $(STAMP)
	$(BIN)/python -m cardstatus openapi > docs/openapi.json

bench: $(STAMP)
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	$(BIN)/python -m bench

reliability: $(STAMP)
	$(BIN)/python -m pytest -m reliability --run-reliability

# Mutation testing of the parsing modules against their database-free tests (minutes per
# module; not part of `make test`). One module: make mutation MODULES=decode.py
mutation: $(STAMP)
	$(BIN)/python -m pip install -q "mutmut==3.8.1"
	$(BIN)/python tests/mutation/run.py $(MODULES)

synth: $(STAMP) $(NODE_STAMP)
	npx cdk synth --quiet

clean:
	rm -rf $(VENV) node_modules cdk.out .mutation layers/build .pytest_cache .mypy_cache .ruff_cache
