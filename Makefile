# The README's commands. Everything installs itself into .venv; nothing is needed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make serve` (production) installs requirements.txt only; the rest adds the
# development tools (requirements-dev.txt includes requirements.txt).
RUNTIME_STAMP := $(VENV)/.runtime-$(shell cksum < requirements.txt | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/vodportal
# ali-oss's prebuilt browser bundle is committed (uploads/static/vendor/, README "Uploading
# from a browser"), so no command but `make vendor` needs Node.js. The version is pinned in
# package.json / package-lock.json, which only `make vendor` reads.
ALI_OSS_BUNDLE := uploads/static/vendor/aliyun-oss-sdk.min.js
# Chart.js for the staff dashboard (README, Staff admin, "Service dashboard"), pinned the same way.
CHART_JS_BUNDLE := uploads/static/vendor/chart.umd.min.js

.PHONY: install install-runtime vendor run serve browser test test-postgres fuzz fuzz-raw check deploy-check bench-issue bench-capacity chaos clean

$(RUNTIME_STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.runtime-*
	touch $(RUNTIME_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.dev-*
	touch $(DEV_STAMP)

install-runtime: $(RUNTIME_STAMP)
install: $(DEV_STAMP)

## Refresh the committed ali-oss and Chart.js bundles from npm after changing a pin in package.json.
vendor:
	npm ci --no-audit --no-fund
	cp node_modules/ali-oss/dist/aliyun-oss-sdk.min.js $(ALI_OSS_BUNDLE)
	cp node_modules/ali-oss/LICENSE uploads/static/vendor/aliyun-oss-sdk.LICENSE.txt
	# Chart.js's UMD build minus its source-map comment: the map is not vendored, and
	# collectstatic's manifest storage fails on a referenced file that is missing.
	sed '/^\/\/# sourceMappingURL=/d' node_modules/chart.js/dist/chart.umd.min.js > $(CHART_JS_BUNDLE)
	cp node_modules/chart.js/LICENSE.md uploads/static/vendor/chart.LICENSE.txt
	@echo "Now record the version and sha256 in README.md (\"Uploading from a browser\"):"
	@head -1 $(ALI_OSS_BUNDLE); sha256sum $(ALI_OSS_BUNDLE)
	@echo "and Chart.js's in README.md (\"Staff admin\", \"Service dashboard\"):"
	@sed -n 2p $(CHART_JS_BUNDLE); sha256sum $(CHART_JS_BUNDLE)

## Run vodportal locally against vodsandbox on SQLite, with demo accounts.
run: install
	BIN=$(BIN) ./scripts/run-local.sh

browser:
	./scripts/ensure-debian-package.sh chromium chromium optional "the browser tests"

## Production-style: collect static files, migrate, serve with gunicorn (gunicorn.conf.py,
## which reads .env as Django does). Runtime requirements only: no test tools, no npm.
serve: install-runtime
	$(BIN)/python manage.py collectstatic --no-input -v 0
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/gunicorn vodportal.wsgi:application -c gunicorn.conf.py

## The whole test suite (SQLite).
test: install browser
	ALIBABA_CLOUD_ECS_METADATA_DISABLED=true $(BIN)/python -m pytest $(PYTEST_ARGS)

## The whole test suite against PostgreSQL.
test-postgres: install browser
	ALIBABA_CLOUD_ECS_METADATA_DISABLED=true DATABASE_URL=$(POSTGRES_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

## Fuzz the running API with schemathesis (>= 2,000 requests; no 5xx, nothing off-schema).
fuzz: install
	$(BIN)/python scripts/fuzz_api.py

## Raw HTTP below the schema: broken headers, encodings, sizes, JSON depth and numbers (no 5xx).
fuzz-raw: install
	$(BIN)/python scripts/fuzz_raw_http.py $(FUZZ_RAW_ARGS)

## Issuing throughput and the 50,000-issuance memory soak (bench/README.md); 8 to 12 minutes.
bench-issue: install
	./scripts/ensure-debian-package.sh wrk wrk required "the issuing benchmark"
	ALIBABA_CLOUD_ECS_METADATA_DISABLED=true $(BIN)/python bench/issue_throughput.py --soak 50000 $(BENCH_ARGS)

## Capacity under VOD latency (bench/README.md, issue 13): latency sweep, overload, naive
## peer; about 10 minutes. CAPACITY_ARGS="--parts sweep --duration 10" for a part of it.
bench-capacity: install
	./scripts/ensure-debian-package.sh wrk wrk required "the capacity benchmark"
	ALIBABA_CLOUD_ECS_METADATA_DISABLED=true $(BIN)/python bench/capacity.py $(CAPACITY_ARGS)

## The fault suite (bench/README.md, "Fault suite"): its own Redis, sandbox, gunicorn and
## PostgreSQL database; a few minutes. CHAOS_ARGS="--scale 0.2" for a quick run.
chaos: install
	ALIBABA_CLOUD_ECS_METADATA_DISABLED=true $(BIN)/python bench/chaos.py $(CHAOS_ARGS)

## Lint, the import direction (import-linter) and Django's system checks.
check: install
	$(BIN)/python -m ruff check .
	$(BIN)/lint-imports
	DJANGO_DEBUG=true $(BIN)/python manage.py check

## The README's deployment steps, word for word, from a clean copy of the tree (CI runs it).
deploy-check:
	$(PYTHON) scripts/deploy_check.py

clean:
	rm -rf $(VENV) var db.sqlite3 .pytest_cache node_modules staticfiles
