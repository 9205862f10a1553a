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
.PHONY: help install demo test test-unit lint format docs bench engine-up engine-down clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@bash scripts/bootstrap.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@# The wheels of dockops's dependencies, fetched here (set-up), so the install playbook's
	@# test can install offline (--no-index) as a fleet without internet does.
	$(BIN)/pip wheel -q --disable-pip-version-check -w .build/wheelhouse .
	@touch $@

install: $(STAMP) ## a venv (.venv) with dockops and its dev extra

demo: $(STAMP) ## the main job on a disposable engine (sets everything up itself)
	@bash scripts/demo.sh

test: $(STAMP) ## every test: unit, then integration on a disposable engine
	$(BIN)/pytest

test-unit: $(STAMP) ## unit tests only (no engine)
	$(BIN)/pytest tests/unit

lint: $(STAMP) ## ruff check, ruff format --check, mypy (strict, whole package), lint-imports (the layers)
	$(BIN)/ruff check dockops tests bench
	$(BIN)/ruff format --check dockops tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP) ## apply ruff's fixes and format
	$(BIN)/ruff check --fix dockops tests bench
	$(BIN)/ruff format dockops tests bench

docs: $(STAMP) ## regenerate docs/cli.md from the CLI itself (a unit test fails when it is stale)
	$(BIN)/python -m dockops.cli.docs docs/cli.md

bench: $(STAMP) ## side-by-side benchmarks (dockops vs docker CLI vs raw Engine API); SUITES="registry …" picks some
	@test -x /usr/bin/time || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
	@# The Podman service too when SUITES names a podman suite (archive-podman, prune-podman),
	@# or names none (every suite runs).
	@WITH_PODMAN=$(if $(SUITES),$(findstring podman,$(SUITES)),1) \
	  bash scripts/with-engine.sh $(BIN)/python -m bench $(SUITES)

ENGINE ?= docker
engine-up: $(STAMP) ## start the disposable engine [ENGINE=podman]; prints DOCKER_HOST=... to export
	@$(HARNESS) up --engine "$(ENGINE)"

engine-down: $(STAMP) ## stop the disposable engine (by its pidfile) [ENGINE=podman]
	@$(HARNESS) down --engine "$(ENGINE)"

# Laptop targets: thin calls of dockops on your own engine (DOCKER_HOST, your docker context or
# /var/run/docker.sock, as docker would), never the disposable one.
.PHONY: push-private prune registry-up registry-secure
# Your values reach dockops through the environment ("$$IMG"), never pasted into a shell line, so
# a quote, `;` or `$(...)` in one stays one literal argument. Each one given is exported as
# `$(value V)`, as typed: make would otherwise expand a `$(...)` in it on export.
USER_VARS := IMG REGISTRY PUSH_AS OLDER_THAN PORT BIND HOST REGISTRY_USER YES
$(foreach v,$(USER_VARS),$(if $(filter undefined,$(origin $(v))),,\
  $(eval override $(v) := $$(value $(v)))$(eval export $(v))))
PRUNE_FLAGS = $(if $(OLDER_THAN),--older-than "$$OLDER_THAN")

push-private: $(STAMP) ## push IMG to your private registry: IMG=app:1.4 [REGISTRY=host:port] [PUSH_AS=name:tag]
	@[ -n "$$IMG" ] || { echo "make push-private: which image? e.g. make push-private IMG=myapp:1.4" >&2; exit 2; }
	$(BIN)/dockops push-private "$$IMG" $(if $(REGISTRY),--registry "$$REGISTRY") $(if $(PUSH_AS),--as "$$PUSH_AS")

prune: $(STAMP) ## remove dangling images: the plan first, then asks (YES=1 does not ask) [OLDER_THAN=7d]
	@$(BIN)/dockops prune-dangling --dry-run $(PRUNE_FLAGS)
	@if [ "$$YES" != 1 ]; then \
	  read -r -p "remove these? [y/N] " answer || answer=; \
	  case $$answer in [yY] | [yY][eE][sS]) ;; *) echo "nothing removed"; exit 0 ;; esac; \
	fi; \
	$(BIN)/dockops prune-dangling $(PRUNE_FLAGS)

registry-up: $(STAMP) ## run a private registry on your engine [PORT=5000] [BIND=0.0.0.0]
	$(BIN)/dockops registry up $(if $(PORT),--port "$$PORT") $(if $(BIND),--bind "$$BIND")

registry-secure: $(STAMP) ## TLS and a login in front of it: HOST=name-or-ip [PORT=443] [REGISTRY_USER=alice]
	@[ -n "$$HOST" ] || { echo "make registry-secure: which name do clients use? e.g. make registry-secure HOST=registry.example REGISTRY_USER=alice" >&2; exit 2; }
	$(BIN)/dockops registry secure --host "$$HOST" $(if $(PORT),--port "$$PORT") $(if $(REGISTRY_USER),--user "$$REGISTRY_USER")

clean: engine-down ## remove the venv and the engine state
	rm -rf $(VENV) .build
