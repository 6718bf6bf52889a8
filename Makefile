# PainSite: `make run` starts a demo on this machine, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_PATIENTS ?= 60
DEMO_IMAGES_PER_PATIENT ?= 6
HOST ?= 127.0.0.1
PORT ?= 8000
VAR_DIR := $(or $(PAINSITE_VAR_DIR),var)

.PHONY: run test lint install install-test browser ldap migrate demo bench clean help

help:
	@echo "make run   - install, migrate, seed a synthetic demo, create demo users, start web + worker"
	@echo "make test  - install, check imports/lint/format, and run the whole test suite (SQLite, or PostgreSQL via DATABASE_URL)"
	@echo "make lint  - only the import contracts (lint-imports), ruff check and ruff format --check"
	@echo "make bench - run the benchmarks in bench/ (slow; results in bench/results/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Browser tests use Debian's chromium, and its Noto CJK fonts so the Chinese pages' screenshots show
# characters, not boxes. Install them when missing and apt-get is usable; otherwise the
# browser tests skip and say why (CI sets PAINSITE_REQUIRE_BROWSER=1 to make that a failure).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's chromium and Noto CJK fonts for the browser tests..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null \
				|| echo "apt-get could not install chromium: browser tests will be skipped"; \
		elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null \
				|| echo "apt-get could not install chromium: browser tests will be skipped"; \
		else \
			echo "chromium is missing and apt-get is not usable here: browser tests will be skipped"; \
		fi; \
	fi

# The directory sign-in tests run a real OpenLDAP server (Debian's slapd, ldap-utils), and
# python-ldap builds against libldap-dev and libsasl2-dev. Install them when missing and apt-get is
# usable (slapd's debconf told not to configure a system directory), then requirements-ldap.txt;
# otherwise those tests skip and say why (CI sets PAINSITE_REQUIRE_LDAP=1 to make that a failure).
LDAP_DEBS := slapd ldap-utils libldap-dev libsasl2-dev
ldap: install
	@if [ ! -x /usr/sbin/slapd ] || ! command -v ldapadd >/dev/null || [ ! -f /usr/include/ldap.h ] || [ ! -f /usr/include/sasl/sasl.h ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then SUDO=; \
		elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; \
		else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then \
			echo "slapd, ldap-utils or the LDAP headers are missing and apt-get is not usable here: directory sign-in tests will be skipped"; \
		else \
			echo "Installing Debian's $(LDAP_DEBS) for the directory sign-in tests..."; \
			echo "slapd slapd/no_configuration boolean true" | $$SUDO debconf-set-selections; \
			$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(LDAP_DEBS) >/dev/null \
				|| echo "apt-get could not install $(LDAP_DEBS): directory sign-in tests will be skipped"; \
		fi; \
	fi
	@if [ -f /usr/include/ldap.h ] && [ -f /usr/include/sasl/sasl.h ]; then \
		$(MAKE) --no-print-directory $(VENV)/.installed-ldap \
			|| echo "pip could not install requirements-ldap.txt: directory sign-in tests will be skipped"; \
	fi

$(VENV)/.installed-ldap: requirements-ldap.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-ldap.txt
	touch $@

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	@if [ ! -f $(VAR_DIR)/.demo-seeded ]; then \
		$(BIN)/python manage.py seed_demo --patients $(DEMO_PATIENTS) --images-per-patient $(DEMO_IMAGES_PER_PATIENT) --seed 1 \
		&& touch $(VAR_DIR)/.demo-seeded; \
	else echo "Demo data already seeded ($(VAR_DIR)/.demo-seeded)."; fi

run: demo
	@echo "Demo users (passwords are new each time you run this):"
	@$(BIN)/python manage.py create_demo_users
	$(BIN)/python manage.py runstack --host $(HOST) --port $(PORT)

# The layer rule and the import circles (.importlinter), lint and format (ruff.toml), then the suite.
lint: install-test
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two test processes by default (PYTEST_WORKERS=0: one), each taking whole files: most tests
# keep one core busy, and tests that wait on workers, servers or the browser overlap (three were
# slower on two cores). The longest files go first (tests/conftest.py), so none is handed out last.
PYTEST_WORKERS ?= 2
test: install-test browser ldap lint
	$(BIN)/python -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

# Each benchmark prints its side-by-side ratios and writes bench/results/<name>.json;
# bench/report.py then renders the measured tables of docs/benchmarks.md and docs/reliability.md
# from those files. Queue, load and training need PostgreSQL.
BENCHMARKS := import_rate ml_stats ml synthetic_faces labeling_queue training results_compare assess load
bench: install-test
	@for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py || exit 1; done
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VAR_DIR) test-artifacts .pytest_cache
