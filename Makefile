# Two commands matter: `make demo` and `make test`. Each installs what it needs
# (Python into .venv, Node packages into node_modules, slither into .venv-tools)
# and skips what is already installed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .venv-tools

.PHONY: demo test lint typecheck pytest contracts-test slither install bench clean chromium

demo: $(VENV)/.installed node_modules/.installed
	$(PY) scripts/demo.py

test: lint typecheck pytest contracts-test slither

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	# not `npm ci`: npm omits other platforms' optional anvil binaries from the lock, and ci then refuses it
	npm install --no-audit --no-fund
	touch $@

$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet 'slither-analyzer==0.11.6'
	touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check vault tests scripts

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy vault

pytest: $(VENV)/.installed node_modules/.installed chromium
	$(VENV)/bin/pytest

# The dashboard's browser tests drive the distribution's Chromium by path (Playwright's own
# browser download is unreachable). Without it they skip and say why.
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "warning: chromium could not be installed; the browser tests will skip"

contracts-test: node_modules/.installed
	npx hardhat test

slither: node_modules/.installed $(TOOLS)/.installed
	npx hardhat compile --force --quiet
	$(TOOLS)/bin/slither . --hardhat-ignore-compile --fail-medium --filter-paths "node_modules|contracts/test" --exclude-informational --exclude-optimization

clean:
	rm -rf artifacts cache .pytest_cache .mypy_cache .ruff_cache
