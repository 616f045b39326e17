PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB := hub/web
NODE_STAMP := $(WEB)/node_modules/.installed

.PHONY: install system-deps demo test test-under-load lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The panel's browser dependencies (socket.io-client), pinned by the lockfile; served by the hub.
$(NODE_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

# What the tests need from the system (Chromium, redis-server): checked on every run, installed
# with apt-get when running as root, otherwise the command to run is printed. `demo` needs neither.
system-deps:
	bash scripts/system-deps.sh

demo: install
	$(BIN)/avhub demo

test: system-deps install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole suite RUNS times in a row with one core kept busy (tests/under_load.sh).
RUNS ?= 5
test-under-load: system-deps install
	PYTHON=$(BIN)/python tests/under_load.sh $(RUNS) $(PYTEST_ARGS)

# docs/example-plugin is the worked example of docs/writing-a-driver.md, held to the same rules.
EXAMPLE := docs/example-plugin

lint: $(STAMP)
	$(BIN)/ruff check hub drivers simulators tests $(wildcard bench) $(EXAMPLE)
	$(BIN)/ruff format --check hub drivers simulators tests $(wildcard bench) $(EXAMPLE)
	$(BIN)/mypy
	$(BIN)/mypy $(EXAMPLE)/relay_plugin $(EXAMPLE)/tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules
