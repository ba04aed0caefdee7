# The two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# First interpreter found that is Python 3.12 or newer.
CANDIDATES := python3.14 python3.13 python3.12 python3
BASE_PYTHON := $(shell for p in $(CANDIDATES); do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)
STAMP := $(VENV)/.installed

.PHONY: run test lint bench venv messages translations clean

$(PY):
	@if [ -z "$(BASE_PYTHON)" ]; then \
		echo "ERROR: Python 3.12 or newer is required (Django 6.1 needs it); found: $$(python3 --version 2>&1 || echo none)."; \
		echo "Install python3.12 (Debian/Ubuntu: apt-get install python3.12 python3.12-venv; or: pyenv install 3.12) and run make again."; \
		exit 1; fi
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) requirements.txt requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

translations: venv
	@$(PY) -m portal.i18n_compile

# make run PORT=8080 serves on another port (default 8000).
run: translations
	@$(PY) -m portal.devenv
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	@echo "Portal: http://127.0.0.1:$(or $(PORT),8000)   admin: http://127.0.0.1:$(or $(PORT),8000)/admin/   e-mails: var/mail/   Ctrl-C stops all."
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.dev start --port $(or $(PORT),8000)

test: translations
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m bandit -q -c pyproject.toml -r portal incidents consent

# Regenerate the .po catalogues after changing translatable strings (needs GNU gettext).
messages: venv
	$(PY) manage.py makemessages -l id --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	$(PY) -m portal.i18n_compile

bench: translations
	@for b in bench/bench_*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var
