# Two commands do all the set-up on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --cache-dir .cache/pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint unit integration bench faults faults-quick clean down

$(STAMP): pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -c .ci/constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its development tools

demo: install ## Run the whole bus locally: broker, simulated registrations, suppression service, mailing filter
	$(BIN)/civreg demo

test: install lint ## Lint, type-check, then every test but the fault suite (starts its own Kafka broker)
	$(BIN)/pytest -m "not faults"

faults-quick: install ## The reduced fault suite as a test (0 lost, 0 doubled per scenario): about 7 minutes
	$(BIN)/pytest -m faults

lint: install ## ruff, mypy (strict) and the import contracts (which way dependencies point: README, Layout)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install ## Unit and contract tests: no broker, PostgreSQL server or schema registry (tests/unit, tests/contract)
	$(BIN)/pytest tests/unit tests/contract

integration: install ## Tests on the real parts and whole processes (tests/integration, tests/e2e)
	$(BIN)/pytest tests/integration tests/e2e

bench: install ## Codec and consumer benchmarks: prints a table, writes bench-results/*.json
	$(BIN)/civreg bench

faults: install ## Fault suite at full size (broker loss, consumer, relay and router SIGKILLs, DB and registry outages): table + bench-results/faults.json
	$(BIN)/python -m deploy.local.faults

down: ## Stop the local broker if one is running
	-$(BIN)/civreg dev down

clean: down
	rm -rf $(VENV) .civreg .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
