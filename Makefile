# dockops: make demo / make test do all their own set-up on a fresh Debian machine (as root):
# the venv, Debian's docker.io and the packages the offline base images are made of, a
# disposable engine under .build/engine, and the base images. They never touch the engine
# at /var/run/docker.sock.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HARNESS := $(BIN)/python -m tests.harness

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit lint format bench engine-up engine-down clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@bash scripts/bootstrap.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP) ## a venv (.venv) with dockops and its dev extra

demo: $(STAMP) ## the main job on a disposable engine (sets everything up itself)
	@bash scripts/demo.sh

test: $(STAMP) ## every test: unit, then integration on a disposable engine
	$(BIN)/pytest

test-unit: $(STAMP) ## unit tests only (no engine)
	$(BIN)/pytest tests/unit

lint: $(STAMP) ## ruff check, ruff format --check, mypy on the typed core
	$(BIN)/ruff check dockops tests bench
	$(BIN)/ruff format --check dockops tests bench
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's fixes and format
	$(BIN)/ruff check --fix dockops tests bench
	$(BIN)/ruff format dockops tests bench

bench: $(STAMP) ## side-by-side benchmarks (dockops vs docker CLI vs raw Engine API); SUITES="registry …" picks some
	@test -x /usr/bin/time || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
	@bash scripts/with-engine.sh $(BIN)/python -m bench $(SUITES)

engine-up: $(STAMP) ## start the disposable engine; prints DOCKER_HOST=... to export
	@$(HARNESS) up

engine-down: $(STAMP) ## stop the disposable engine (by its pidfile)
	@$(HARNESS) down

clean: engine-down ## remove the venv and the engine state
	rm -rf $(VENV) .build
