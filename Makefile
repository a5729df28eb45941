# Developer and CI entry points. `make test` is what CI runs (via .ci/run).
# Services run on loopback only; see deploy/local/*.sh for their knobs.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
LOCAL := $(ROOT)/deploy/local
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
LINT_PATHS := streams tests bench grafana

# Tests get their own ports and state dir, so they never touch the services
# a developer runs on the defaults (Kafka 9092, Redis 6379) via services-up.
# All service ports stay below Linux's ephemeral range (32768-60999): a client
# reconnecting to a stopped broker on such a port can get that very port as its
# own (a TCP self-connect), and the broker then cannot bind it on restart.
TEST_KAFKA_PORT ?= 19092
TEST_KAFKA_CONTROLLER_PORT ?= 19093
TEST_REDIS_PORT ?= 16379
TEST_LOCAL_DIR ?= $(ROOT)/.local/test
TEST_SERVICES_ENV = CC_LOCAL_DIR=$(TEST_LOCAL_DIR) CC_KAFKA_PORT=$(TEST_KAFKA_PORT) \
	CC_KAFKA_CONTROLLER_PORT=$(TEST_KAFKA_CONTROLLER_PORT) CC_REDIS_PORT=$(TEST_REDIS_PORT)
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-k redis -x'
PYTEST_ARGS ?=
# Test processes (pytest-xdist); the tests on the services run in one of them,
# in order (tests/conftest.py). PYTEST_WORKERS=0 runs everything in pytest itself.
PYTEST_WORKERS ?= 2
# Extra benchmark arguments, e.g. make bench BENCH_ARGS='--quick'
BENCH_ARGS ?=

.PHONY: help setup services-up services-down services-status lint test run incident bench

help:
	@echo "make setup            install system packages, Kafka jars and .venv (idempotent)"
	@echo "make services-up      start Kafka (127.0.0.1:9092) and Redis (127.0.0.1:6379)"
	@echo "make services-down    stop them"
	@echo "make services-status  show whether they run"
	@echo "make lint             ruff check + ruff format --check on $(LINT_PATHS)"
	@echo "make run              setup, Kafka + Redis, a worker and the simulator (normal day, x60)"
	@echo "make incident         wipe the demo's Kafka/Redis data, replay an incident spike, show the breach"
	@echo "make test             setup, start test services ($(TEST_KAFKA_PORT)/$(TEST_REDIS_PORT)), pytest, stop them"
	@echo "make bench            the benchmark (BENCH_ARGS='--quick' for a smoke run); writes docs/benchmarks.md"

setup:
	bash $(LOCAL)/setup.sh

# The demo: services on the default ports, one worker serving /metrics on
# 127.0.0.1:9100, the simulator on the normal-day scenario at x60, and the SLA
# events of cc.sla printed as they happen. Kafka and Redis keep running after
# Ctrl-C (make services-down stops them).
run: setup services-up
	$(VENV)/bin/cc-kpi run

# The incident demo starts from empty topics, so that its timeline does not
# mix with an earlier run's: call/support triples for an hour and breaches.
incident: setup
	$(LOCAL)/kafka.sh stop --purge
	$(LOCAL)/redis.sh stop --purge
	$(MAKE) services-up
	$(VENV)/bin/cc-kpi run --scenario incident-spike --speed 600

services-up:
	$(LOCAL)/kafka.sh start
	$(LOCAL)/redis.sh start

# Both are stopped even if the first stop fails.
services-down:
	@rc=0; $(LOCAL)/redis.sh stop || rc=$$?; $(LOCAL)/kafka.sh stop || rc=$$?; exit $$rc

services-status:
	$(LOCAL)/kafka.sh status || true
	$(LOCAL)/redis.sh status || true

lint:
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

# The services are stopped on every exit path (pytest failure, Ctrl-C, a
# service that fails to start), and make exits with pytest's own code.
test: setup
	@cleanup() { \
		$(TEST_SERVICES_ENV) $(LOCAL)/redis.sh stop || true; \
		$(TEST_SERVICES_ENV) $(LOCAL)/kafka.sh stop || true; \
	}; \
	trap cleanup EXIT; \
	trap 'exit 130' INT; \
	trap 'exit 143' TERM; \
	$(TEST_SERVICES_ENV) $(LOCAL)/kafka.sh start; \
	$(TEST_SERVICES_ENV) $(LOCAL)/redis.sh start; \
	rc=0; \
	CC_TEST_KAFKA=127.0.0.1:$(TEST_KAFKA_PORT) \
	CC_TEST_REDIS=redis://127.0.0.1:$(TEST_REDIS_PORT)/0 \
	CC_TEST_KAFKA_PORT=$(TEST_KAFKA_PORT) CC_TEST_KAFKA_CONTROLLER_PORT=$(TEST_KAFKA_CONTROLLER_PORT) \
	CC_TEST_REDIS_PORT=$(TEST_REDIS_PORT) CC_TEST_LOCAL_DIR=$(TEST_LOCAL_DIR) \
		$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS) || rc=$$?; \
	exit $$rc

# Its own Kafka and Redis (24092/24379); see docs/benchmarks.md.
bench: setup
	$(PY) -m bench $(BENCH_ARGS)
