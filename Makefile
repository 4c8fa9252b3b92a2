# The commands people type. Every target installs what it needs first, so each works on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 matches the Lambda runtime; use it when present (pyenv or PATH), else the newest python3.
PY313 := $(shell (pyenv prefix 3.13.0 2>/dev/null || true) | head -n1)
PYTHON ?= $(or $(wildcard $(PY313)/bin/python3.13),$(shell command -v python3.13 2>/dev/null),$(shell command -v python3))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell md5sum pyproject.toml | cut -c1-12)
CHROMIUM := /usr/bin/chromium

.PHONY: help install run test test-fast lint format bench chromium clean sam-tools build validate deploy

help:
	@echo "make run     run the whole product locally (emulated AWS, no account, no Docker)"
	@echo "make test    install everything and run the whole test suite"
	@echo "make lint    ruff and mypy"
	@echo "make bench   benchmarks: prints a table and writes bench/results.json"
	@echo "make build   sam build (no Docker)         make deploy   sam deploy --guided"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3 is required"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || { \
	  echo "Python 3.12+ is required, $(PYTHON) is $$($(PYTHON) --version 2>&1); run e.g. make PYTHON=python3.13 ..."; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# Browser tests drive Debian's Chromium through Playwright (Playwright's own browser download is not used).
# Installed with apt-get (as root or with sudo) when missing; where that is impossible the browser tests are
# skipped, unless CHROMIUM_REQUIRED is set (CI sets it).
CHROMIUM_REQUIRED ?=
chromium:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; else sudo=no; fi; \
	  if [ "$$sudo" != no ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    { $$sudo apt-get update -qq && \
	      $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || true; \
	  fi; \
	fi
	@test -x $(CHROMIUM) || { \
	  if [ -n "$(CHROMIUM_REQUIRED)" ]; then echo "$(CHROMIUM) is required: apt-get install chromium"; exit 1; fi; \
	  echo "note: $(CHROMIUM) is missing, so the browser tests will be skipped (apt-get install chromium)"; }

run: install
	$(BIN)/python -m cartrecovery.local

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install chromium lint
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q tests/unit

bench: install
	$(BIN)/python -m bench

# SAM CLI lives in its own virtualenv: it pins its own boto3, which must not leak into the product's.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# `sam build` for a python3.13 runtime needs python3.13 on PATH.
SAM_PATH := $(if $(PY313),$(PY313)/bin:,)$(PATH)

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli

sam-tools: $(SAM)

validate: install $(SAM)
	$(BIN)/cfn-lint template.yaml
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-ap-northeast-1} $(SAM) validate --lint

build: $(SAM)
	PATH="$(SAM_PATH)" $(SAM) build

# `make deploy` asks for the parameters (and saves them); `make deploy ENV=prod GUIDED=` deploys with the
# saved prod parameters, showing the change set and asking before it applies it (confirm_changeset).
ENV ?= default
GUIDED ?= --guided
deploy: build
	PATH="$(SAM_PATH)" $(SAM) deploy $(GUIDED) --config-env $(ENV)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
