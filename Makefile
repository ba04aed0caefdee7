# The two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
# make run PORT=8080 serves elsewhere.
PORT ?= 8000
export PORT
# Keep compiled bytecode between the processes `make run` starts (some shells turn it off).
unexport PYTHONDONTWRITEBYTECODE
PY := $(VENV)/bin/python
# First interpreter found that is Python 3.12 or newer.
CANDIDATES := python3.14 python3.13 python3.12 python3
BASE_PYTHON := $(shell for p in $(CANDIDATES); do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)
STAMP := $(VENV)/.installed
# The locks (hashes of every file, runtime and development) are generated from the
# human-edited requirements*.txt by `make lock`; installs check every hash.
LOCK := requirements-dev.lock
# uv when the machine has it; otherwise pip bootstraps uv into the venv from the lock's
# own uv entry (hash-checked), and plain pip installs from the same lock if that fails.
SYSTEM_UV := $(shell command -v uv 2>/dev/null)

.PHONY: run test lint bench venv messages translations clean lock lock-check audit

$(PY):
	@if [ -z "$(BASE_PYTHON)" ]; then \
		echo "ERROR: Python 3.12 or newer is required (Django 6.1 needs it); found: $$(python3 --version 2>&1 || echo none)."; \
		echo "Install python3.12 (Debian/Ubuntu: apt-get install python3.12 python3.12-venv; or: pyenv install 3.12) and run make again."; \
		exit 1; fi
	@if [ -n "$(SYSTEM_UV)" ]; then $(SYSTEM_UV) venv --quiet --seed --python "$$(command -v $(BASE_PYTHON))" $(VENV); \
	else $(BASE_PYTHON) -m venv $(VENV); fi

$(STAMP): $(PY) $(LOCK)
	@uv="$(SYSTEM_UV)"; \
	if [ -z "$$uv" ] && $(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r <(awk '/^uv==/{p=1} p{print; if ($$0 !~ /\\$$/) exit}' $(LOCK)) >/dev/null 2>&1; then uv=$(VENV)/bin/uv; fi; \
	if [ -n "$$uv" ]; then \
		echo "Installing $(LOCK) with uv (hashes checked)"; \
		$$uv pip install --quiet --python $(PY) --require-hashes -r $(LOCK); \
	else \
		echo "uv not available: installing $(LOCK) with pip (hashes checked)"; \
		$(PY) -m pip install --quiet --require-hashes -r $(LOCK); \
	fi
	@touch $(STAMP)

venv: $(STAMP)

# Regenerate the locks after editing requirements.txt or requirements-dev.txt.
lock: venv
	$(VENV)/bin/uv pip compile requirements.txt --universal --python-version 3.12 --generate-hashes --quiet -o requirements.lock
	$(VENV)/bin/uv pip compile requirements-dev.txt --universal --python-version 3.12 --generate-hashes --quiet -c requirements.lock -o requirements-dev.lock

# Fail when a lock no longer matches the requirement lists (CI runs this).
lock-check: venv
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; uv="$(CURDIR)/$(VENV)/bin/uv"; \
	cp requirements.txt requirements-dev.txt requirements.lock requirements-dev.lock "$$tmp"/; \
	(cd "$$tmp" && \
	 $$uv pip compile requirements.txt --universal --python-version 3.12 --generate-hashes --quiet -o requirements.lock && \
	 $$uv pip compile requirements-dev.txt --universal --python-version 3.12 --generate-hashes --quiet -c requirements.lock -o requirements-dev.lock) || exit 1; \
	for f in requirements.lock requirements-dev.lock; do \
		if ! diff <(grep -v '^#' $$f) <(grep -v '^#' "$$tmp/$$f") >"$$tmp/diff"; then \
			echo "ERROR: $$f is stale: run 'make lock' and commit it."; head -20 "$$tmp/diff"; exit 1; fi; \
	done; echo "Locks are up to date."

# Known vulnerabilities in the locked versions; exceptions with a reason and an expiry
# date live in .ci/vulnerability-allowlist.toml.
audit: venv
	$(PY) .ci/audit.py

translations: venv
	@$(PY) -m portal.i18n_compile

run: translations
	@$(PY) -m portal.devenv
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	@echo "Portal: http://127.0.0.1:$(PORT)   admin: http://127.0.0.1:$(PORT)/admin/   e-mails: var/mail/   Ctrl-C stops all."
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.dev start --port $(PORT)

test: translations
	$(PY) -m pytest --durations=15 $(PYTEST_ARGS)

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
