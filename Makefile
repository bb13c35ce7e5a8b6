# All targets use the project-local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

CODEGEN_FLAGS := --input-file-type jsonschema --output-model-type pydantic_v2.BaseModel \
	--base-class olmix.jsonmodel.JsonModel --target-python-version 3.11 \
	--use-annotated --field-constraints --collapse-root-models --use-field-description \
	--use-schema-description --enum-field-as-literal all --use-standard-collections \
	--use-union-operator --use-double-quotes --strict-nullable --keep-model-order \
	--disable-timestamp --enable-version-header --formatters builtin
SCHEMAS := $(wildcard schema/*.schema.json)
GEN := generated/olmix_generated

.PHONY: install demo generate check-generated validate lint typecheck test check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,train,plot]'
	touch $(STAMP)

# The main job on the embedded default: validate the shipped configs and show what they describe.
demo: install
	$(BIN)/olmix validate config/

generate: install
	$(PY) -m olmix.devtools.generate $(GEN) docs -- $(CODEGEN_FLAGS)

check-generated: install
	$(PY) -m olmix.devtools.generate $(GEN) docs --check -- $(CODEGEN_FLAGS)

validate: install
	$(BIN)/check-jsonschema --check-metaschema $(SCHEMAS)
	find config -name '*.yaml' -o -name '*.yml' | sort | xargs $(BIN)/check-jsonschema --schemafile schema/mixture.schema.json
	$(BIN)/olmix validate config/

lint: install
	$(BIN)/ruff check olmix tests
	$(BIN)/ruff format --check olmix tests

typecheck: install
	$(BIN)/mypy

test: install
	$(BIN)/pytest -q

check: lint typecheck check-generated validate test

bench: install
	$(PY) -m olmix.devtools.bench
	$(PY) -m olmix.devtools.bench_train

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
