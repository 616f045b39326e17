PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB := hub/web
NODE_STAMP := $(WEB)/node_modules/.installed

.PHONY: install demo test test-under-load lint clean

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

demo: install
	$(BIN)/avhub demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole suite RUNS times in a row with one core kept busy (tests/under_load.sh).
RUNS ?= 5
test-under-load: install
	PYTHON=$(BIN)/python tests/under_load.sh $(RUNS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check hub drivers simulators tests $(wildcard bench)
	$(BIN)/ruff format --check hub drivers simulators tests $(wildcard bench)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules
