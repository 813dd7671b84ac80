# bookrental: `make run` starts everything, `make test` tests everything.
# Every target installs what it needs; nothing is installed by hand.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF_VERSION := 1.75.0
BUF := build/npm/node_modules/.bin/buf
GEN := build/gen
WEB_GEN := build/web/gen
WEB_DIST := build/web/dist
PROTOS := $(shell find protos -name '*.proto')
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PYTHONPATH := $(CURDIR):$(CURDIR)/$(GEN)

.DEFAULT_GOAL := help
.PHONY: help setup broker proto lint format keys tls token run test test-unit reset clean bench bench-smoke bench-threads bench-grpc-cost bench-pg-statements bench-purge bench-rebuild rebuild-books restore-notifications bench-profile bench-proto wrk k8s-check k8s-envoy kubectl siege chromium axe rolling contracts-snapshot docs web web-test

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

setup: $(VENV)/.installed broker proto keys tls ## make .venv, install pinned deps, fetch the Kafka broker, generate stubs, dev keys and TLS certificate

# The development broker: Apache Kafka 4.4.0 and its run-time jars from Maven Central
# (broker/pom.xml) into build/broker/lib; tools/kafka.py starts it. Java 17+ and Maven
# are checked first, each with one line saying what to install.
BROKER_LIB := build/broker/lib
$(BROKER_LIB)/.stamp: broker/pom.xml
	@command -v java >/dev/null || { echo "make: the Kafka broker needs Java 17 or newer: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
	@v=$$(java -XshowSettings:properties -version 2>&1 | awk '/java.specification.version/ {print $$3}'); \
	  [ "$${v%%.*}" -ge 17 ] 2>/dev/null || { echo "make: the Kafka broker needs Java 17 or newer, found $$v: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
	@command -v mvn >/dev/null || { echo "make: fetching the Kafka broker needs Maven: apt-get install maven" >&2; exit 1; }
	@rm -rf $(BROKER_LIB) && mkdir -p $(BROKER_LIB)
	@echo "fetching Apache Kafka $$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' broker/pom.xml) from Maven Central into $(BROKER_LIB) ..."
	@mvn -B -q -f broker/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(BROKER_LIB) \
	  > build/broker/mvn.log 2>&1 || { echo "make: fetching the broker's jars failed: $$(grep -m1 -E 'ERROR|Could not' build/broker/mvn.log | sed 's/\x1b\[[0-9;]*m//g') (full output: build/broker/mvn.log)" >&2; exit 1; }
	@touch $@

broker: $(BROKER_LIB)/.stamp ## fetch Apache Kafka (KRaft) for make run and the tests into build/broker/

# Python stubs and the Envoy descriptor set, generated from protos/ (never committed).
$(GEN)/.stamp: $(VENV)/.installed $(PROTOS)
	@rm -rf $(GEN) && mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc -Iprotos -I$(SITE) \
	  --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) \
	  --include_imports --descriptor_set_out=build/bookrental.pb $(PROTOS)
	@find $(GEN)/bookrental -type d -exec touch {}/__init__.py \;
	@touch $@

proto: $(GEN)/.stamp ## generate Python stubs and the Envoy descriptor set into build/

# The contracts older consumers were built from, for tests/unit/test_contract_compat.py:
# protos/ at REV (read from git) as a descriptor set. Refresh when a contract change is released.
contracts-snapshot: $(VENV)/.installed ## keep protos/ of REV (default HEAD) as tests/data/contracts/previous.pb (compatibility tests)
	$(PY) -m tools.contract_snapshot --rev $(or $(REV),HEAD)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix build/npm @bufbuild/buf@$(BUF_VERSION)

# buf breaking (and the REST routes, which buf does not compare) against the contracts
# before this change, read from git: see tools/breaking.py; BREAKING_AGAINST=<ref> overrides.
# Then ruff and mypy with pyproject.toml's settings; mypy reads the generated stubs' types.
# google/api/*.proto for buf (lint, and generate for the web app), copied from the
# googleapis-common-protos wheel (buf.yaml says why).
PROTODEPS := build/protodeps/.stamp
$(PROTODEPS): $(VENV)/.installed
	@rm -rf build/protodeps && mkdir -p build/protodeps/google/api
	@cp $(SITE)/google/api/annotations.proto $(SITE)/google/api/http.proto build/protodeps/google/api/
	@touch $@

lint: $(BUF) $(VENV)/.installed $(GEN)/.stamp $(PROTODEPS) $(WEB_GEN)/.stamp ## buf lint + buf format check of protos/, no breaking change against main (BREAKING_AGAINST=ref), ruff (lint, format), mypy, and tsc of the web app
	$(BUF) lint
	$(BUF) format -d --exit-code protos
	$(PY) -m tools.breaking $(if $(BREAKING_AGAINST),--against '$(BREAKING_AGAINST)')
	$(VENV)/bin/ruff check tools bench tests services
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy tools bench services
	cd web && node_modules/.bin/tsc --noEmit

format: $(VENV)/.installed ## ruff format the Python code and apply ruff's safe fixes (what make lint checks)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix tools bench tests services

# The API documents, generated from protos/ into build/docs (never committed) and served
# by make run's gateway at /docs/openapi.json and /docs/asyncapi.json. OpenAPI: gnostic's
# protoc-gen-openapi (a Go program, built here from the Go module proxy), completed and
# validated by tools/openapi.py; AsyncAPI: tools/asyncapi.py, validated against the
# AsyncAPI 3.0.0 JSON Schema of @asyncapi/specs (npm).
GNOSTIC_VERSION := v0.7.1
ASYNCAPI_SPECS_VERSION := 6.11.1
OPENAPI_PLUGIN := build/go/bin/protoc-gen-openapi
ASYNCAPI_SPEC := build/npm/node_modules/@asyncapi/specs/schemas/3.0.0.json
DOCS := build/docs
$(OPENAPI_PLUGIN):
	@command -v go >/dev/null || { echo "make: the OpenAPI generator (gnostic's protoc-gen-openapi) is built with Go 1.22 or newer: apt-get install golang-go" >&2; exit 1; }
	GOBIN=$(CURDIR)/build/go/bin go install github.com/google/gnostic/cmd/protoc-gen-openapi@$(GNOSTIC_VERSION)

$(ASYNCAPI_SPEC):
	npm install --silent --no-audit --no-fund --prefix build/npm @asyncapi/specs@$(ASYNCAPI_SPECS_VERSION)

$(DOCS)/.stamp: $(GEN)/.stamp $(OPENAPI_PLUGIN) $(ASYNCAPI_SPEC) tools/openapi.py tools/asyncapi.py tools/envoy_config.py \
		$(wildcard tools/gateway/*.py) services/catalogue.py \
		services/chassis/events.py services/chassis/settings.py $(wildcard services/*/adapters.py services/*/entrypoints.py)
	@rm -rf $(DOCS) && mkdir -p $(DOCS)
	$(PY) -m tools.openapi --plugin $(OPENAPI_PLUGIN) --out $(DOCS)/openapi.json
	$(PY) -m tools.asyncapi --spec $(ASYNCAPI_SPEC) --out $(DOCS)/asyncapi.json
	@touch $@

docs: $(DOCS)/.stamp ## OpenAPI 3 (REST) and AsyncAPI 3 (Kafka) documents from protos/ into build/docs/

# The web app (web/, issue 20): npm ci when web/package-lock.json changes; its API client
# generated from protos/ by buf with protoc-gen-es v2 (web/buf.gen.yaml) into build/web/gen,
# whose imports of @bufbuild/protobuf resolve through build/web/node_modules -> web/node_modules;
# tsc, then Vite's build into build/web/dist, which the gateway serves at /.
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_GEN)/.stamp: web/node_modules/.installed $(BUF) $(PROTODEPS) $(PROTOS) web/buf.gen.yaml
	@rm -rf $(WEB_GEN) && mkdir -p build/web && ln -sfn ../../web/node_modules build/web/node_modules
	$(BUF) generate --template web/buf.gen.yaml
	@touch $@

$(WEB_DIST)/.stamp: $(WEB_GEN)/.stamp $(WEB_SRC)
	cd web && node_modules/.bin/tsc --noEmit && node_modules/.bin/vite build --logLevel warn
	@touch $@

web: $(WEB_DIST)/.stamp ## build the web app (web/) into build/web/dist: npm ci, client generated from protos/, tsc, Vite
	@echo "web app: $$(cat $(WEB_DIST)/assets/*.js $(WEB_DIST)/assets/*.css | gzip -9 | wc -c) bytes of JS+CSS gzipped in $(WEB_DIST)"

web-test: $(WEB_GEN)/.stamp ## the web app's unit tests (Vitest): seconds
	cd web && node_modules/.bin/vitest run

var/dev-keys/jwks.json: | $(VENV)/.installed
	$(PY) -m tools.devkeys var/dev-keys

keys: var/dev-keys/jwks.json ## the development signing key and JWKS (git-ignored, under var/)

var/dev-tls/cert.pem: | $(VENV)/.installed
	$(PY) -m tools.devcert var/dev-tls

tls: var/dev-tls/cert.pem ## the development CA and gateway certificate for make run TLS=1 (git-ignored, under var/)

# USER must come from the command line: the environment's USER (your login) is not a choice.
token: keys ## print a token: make -s token USER=alice ROLE=customer (or ROLE=stock_manager) [TTL=seconds, 60..86400, default 3600]
	@$(PY) -m tools.token --user "$(if $(filter command line,$(origin USER)),$(USER))" --role "$(ROLE)" --ttl "$(TTL)"

run: setup docs web ## start Kafka, the three services and Envoy (TLS=1: also HTTPS/gRPC-TLS on 8443; PG=1: on PostgreSQL; TRACING=1: traces to a local receiver, see make trace); Ctrl-C stops them all
	$(PY) -m tools.devstack $(if $(filter 1 true yes,$(TLS)),--tls) $(if $(filter 1 true yes,$(PG)),--postgres) $(if $(filter 1 true yes,$(TRACING)),--tracing)

trace: setup ## print one reservation's trace from make run TRACING=1 (RESERVATION=<id>; without it, the latest trace)
	$(PY) -m tools.traces show $(if $(RESERVATION),--reservation $(RESERVATION),--last)

restore-notifications: setup ## re-derive the notifications alert's table lacks from the stock topic, sending none again (PG=1 for make run PG=1's database); docs/operations.md
	$(PY) -m tools.admin alert $(if $(filter 1 true yes,$(PG)),--postgres) -- $(PY) -m services.alert.restore $(RESTORE_ARGS)

rebuild-books: setup ## rebuild the book list from the stock topic while make run serves (PG=1 for make run PG=1's database); docs/operations.md
	$(PY) -m tools.admin reservation $(if $(filter 1 true yes,$(PG)),--postgres) -- $(PY) -m services.reservation.rebuild $(REBUILD_ARGS)

test: setup siege chromium axe k8s-check $(BUF) docs web ## k8s-check, the web app's unit tests (Vitest), then unit and integration tests (real broker, services, Envoy and a headless browser)
	cd web && node_modules/.bin/vitest run
	$(PY) -m pytest

# siege loads the rolling-restart test (Debian package); installed only when missing.
siege:
	@command -v siege >/dev/null || (apt-get update && apt-get install -y siege)

# The browser tests (tests/integration/test_web.py) drive Debian's Chromium with
# Playwright for Python (requirements.txt), never a browser Playwright downloads, and
# scan each page with axe-core (npm), injected into the page from build/npm.
AXE_CORE_VERSION := 4.14.1
AXE_JS := build/npm/node_modules/axe-core/axe.min.js
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

$(AXE_JS):
	npm install --silent --no-audit --no-fund --prefix build/npm axe-core@$(AXE_CORE_VERSION)

axe: $(AXE_JS)

rolling: setup siege ## rolling restart of every service under siege, plus a killed replica (docs/operations.md)
	$(PY) -m tools.rolling --kill

test-unit: setup ## the tests with no I/O (domain, contracts, settings): seconds
	$(PY) -m pytest tests/unit -m "not io and not integration"

# --- benchmark (docs/performance.md) -------------------------------------------
# The bench's echo service (its rate through Envoy is the machine's limit) and a
# descriptor set with it beside ours, for the bench's Envoy.
BENCH_GEN := build/bench/gen
BENCH_PROTOS := $(shell find bench/protos -name '*.proto')
$(BENCH_GEN)/.stamp: $(GEN)/.stamp $(BENCH_PROTOS)
	@rm -rf $(BENCH_GEN) && mkdir -p $(BENCH_GEN)
	$(PY) -m grpc_tools.protoc -Ibench/protos -I$(SITE) \
	  --python_out=$(BENCH_GEN) --grpc_python_out=$(BENCH_GEN) $(BENCH_PROTOS)
	$(PY) -m grpc_tools.protoc -Iprotos -Ibench/protos -I$(SITE) \
	  --include_imports --descriptor_set_out=build/bench.pb $(PROTOS) $(BENCH_PROTOS)
	@find $(BENCH_GEN)/benchecho -type d -exec touch {}/__init__.py \;
	@touch $@

bench-proto: $(BENCH_GEN)/.stamp

# wrk is the load tool (Debian package); installed only when missing.
wrk:
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)

bench: setup bench-proto wrk ## benchmark (minutes): echo limit, reservations REST/gRPC, e2e, catch-up; writes bench/results + docs/performance.md
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/$(BENCH_GEN) $(PY) -m bench $(BENCH_ARGS)

bench-smoke: setup bench-proto wrk ## the benchmark in miniature (~30 s): checks it runs and yields numbers; writes nothing
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/$(BENCH_GEN) $(PY) -m bench --smoke $(BENCH_ARGS)

bench-threads: setup bench-proto wrk ## CPU per reservation per process and thread at one rate, with e2e latency (docs/performance.md)
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/$(BENCH_GEN) $(PY) -m bench.threads $(THREADS_ARGS)

bench-grpc-cost: setup bench-proto ## server CPU per bare unary RPC: grpcio sync server vs grpc.aio (docs/performance.md)
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/$(BENCH_GEN) $(PY) -m bench.grpc_cost $(GRPC_COST_ARGS)

bench-pg-statements: setup ## what one statement costs PostgreSQL: psycopg2's text, prepared, ten rows in one INSERT (docs/performance.md)
	$(PY) -m bench.pg_statement_cost $(PG_STATEMENTS_ARGS)

bench-purge: setup ## how fast the purge deletes 100,000 old outbox rows and inbox records, and a writer's wait meanwhile (docs/operations.md)
	$(PY) -m bench.purge_rate $(PURGE_ARGS)

bench-rebuild: setup ## how long rebuilding the book list from 100,000 stock events takes, SQLite and PostgreSQL (docs/operations.md)
	$(PY) -m bench.rebuild_rate $(REBUILD_BENCH_ARGS)

bench-profile: setup bench-proto wrk ## py-spy profile of the services under reservation load (build/profile/)
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/$(BENCH_GEN) $(PY) -m bench.profile $(PROFILE_ARGS)

# Everything make run and set-up keep between runs lives in var/; build/ and .venv/ stay.
reset: ## start over: delete var/ (service databases, the Kafka log, PostgreSQL data, logs, the dev signing key, so earlier tokens stop working, and the dev TLS certificate); stop make run first
	rm -rf var

clean: ## remove generated files and local data (keeps .venv)
	rm -rf build var

# --- Kubernetes manifests and images, checked offline (no cluster, no Docker engine) ---
K8S_VENV := build/k8s-venv
K8S_OVERLAYS := $(notdir $(wildcard k8s/overlays/*))
DOCKERFILES := services/Dockerfile envoy/Dockerfile
CHECKOV := $(K8S_VENV)/bin/checkov --quiet --compact --skip-download -o cli
# kube-score (a Go module, built from the Go module proxy): probes, anti-affinity, storage
# limits, StatefulSet services... A finding fails unless a kube-score/ignore annotation
# beside it says why.
KUBE_SCORE_VERSION := 1.20.0
KUBE_SCORE := build/k8s-tools/kube-score-$(KUBE_SCORE_VERSION)

# kubectl (Debian package; its kustomize renders the overlays), installed only when missing.
kubectl:
	@command -v kubectl >/dev/null || (apt-get update && apt-get install -y kubectl)

$(K8S_VENV)/.installed: k8s/requirements-check.txt
	$(PYTHON) -m venv $(K8S_VENV)
	$(K8S_VENV)/bin/pip install --disable-pip-version-check -q -r k8s/requirements-check.txt
	@touch $@

$(KUBE_SCORE):
	@command -v go >/dev/null || { echo "make: kube-score is built with Go: apt-get install golang-go" >&2; exit 1; }
	GOBIN=$(CURDIR)/build/k8s-tools go install github.com/zegl/kube-score/cmd/kube-score@v$(KUBE_SCORE_VERSION)
	mv build/k8s-tools/kube-score $@

k8s-envoy: setup ## re-render k8s/base/gateway/envoy.yaml from envoy/envoy.template.yaml
	$(PY) -m tools.k8s_envoy

# Every overlay rendered (kubectl kustomize), schema-validated (kubernetes-validate),
# security-scanned with the Dockerfiles (checkov: a finding fails unless a skip annotation
# in the manifest says why), linted (kube-score), and held to the invariants of
# tests/unit/test_k8s*.py. Rendered output lands in build/k8s/<overlay>.{yaml,json}.
k8s-check: setup kubectl $(K8S_VENV)/.installed $(KUBE_SCORE) ## render, validate, lint and security-scan k8s/ and the Dockerfiles; test its invariants
	$(PY) -m tools.k8s_envoy --check
	$(PY) -m tools.k8s_envoy --validate
	@rm -rf build/k8s && mkdir -p build/k8s
	@for o in $(K8S_OVERLAYS); do \
	  kubectl kustomize k8s/overlays/$$o > build/k8s/$$o.yaml || exit 1; \
	  $(K8S_VENV)/bin/python -c 'import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)' \
	    < build/k8s/$$o.yaml > build/k8s/$$o.json || exit 1; \
	  echo "rendered k8s/overlays/$$o: $$(grep -c '^kind:' build/k8s/$$o.yaml) objects"; \
	done
	$(K8S_VENV)/bin/kubernetes-validate --strict --quiet build/k8s/*.yaml
	$(CHECKOV) --framework kubernetes dockerfile $(addprefix -f ,$(wildcard build/k8s/*.yaml) $(DOCKERFILES))
	@$(KUBE_SCORE) score --output-format ci --exit-one-on-warning build/k8s/*.yaml > build/k8s/kube-score.txt; rc=$$?; \
	  grep -vE '^\[(OK|SKIPPED)\]' build/k8s/kube-score.txt; echo "kube-score: $$(grep -c '^\[OK\]' build/k8s/kube-score.txt) checks passed"; exit $$rc
	$(PY) -m pytest tests/unit/test_k8s*.py -q -p no:cacheprovider --basetemp=build/k8s/pytest
