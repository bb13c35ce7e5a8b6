# All targets use the project-local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

CODEGEN_FLAGS := --input-file-type jsonschema --output-model-type pydantic_v2.BaseModel \
	--base-class olmix.jsonmodel.JsonModel --target-python-version 3.11 \
	--use-annotated --field-constraints --collapse-root-models --use-type-alias --use-field-description \
	--use-schema-description --enum-field-as-literal all --use-standard-collections \
	--use-union-operator --use-double-quotes --strict-nullable --keep-model-order \
	--disable-timestamp --enable-version-header --formatters builtin
SCHEMAS := $(wildcard schema/*.schema.json)
GEN := generated/olmix_generated

.PHONY: install demo demo-swarm demo-slurm generate check-generated check-configs validate lint typecheck test test-fast check-static check bench fuzz clean

install: $(STAMP)

# pip compiles every module one by one; compileall does it on every core, 20 s sooner on 2 cores. The
# compiled files matter: with PYTHONDONTWRITEBYTECODE set, nothing is cached at import, and each of the
# demo's five trainings would compile torch again. (A file that cannot compile, such as a test for a
# newer Python inside torch, is skipped: it only means that file compiles when imported.)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e '.[dev,train,plot,fit,fit-trees,beaker,eval,wandb]'
	$(PY) -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

# Node tools for the second validator (ajv) and the language-server tests, from the lockfile.
ifneq ($(shell command -v npm 2>/dev/null),)
install: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
endif

# The main job on the embedded default (this machine, no cloud account, no cluster): a synthetic corpus in
# the real layout, the five quality-threshold experiments launched on the local backend against it (shrunk
# to a 1M-parameter proxy with --set), trained with OLMo-core, and the results table.
DEMO := demo
DEMO_DATA := $(abspath $(DEMO))/data
DEMO_WEB := $(DEMO_DATA)/cc_all_dressed/all_dressed_v3/dclm_plus2_vigilantes/allenai/dolma2-tokenizer
DEMO_TRAINER := {python} -m olmix.train --plan {plan} --out {run_dir} --heldout-tokens 128 --eval-tokens 4096 \
	--eval best_web=$(DEMO_WEB)/*/vigintile_0020/heldout/*.npy \
	--eval all_web=$(DEMO_WEB)/*/vigintile_*/heldout/*.npy \
	--eval wikipedia=$(DEMO_DATA)/wikipedia-dolma-0823/allenai/dolma2-tokenizer/heldout/*.npy
# All five runs at once, one thread each (the local backend shares the cores out): no run waits for a slot
# while a core idles. Each needs about 1.1 GB of memory.
DEMO_SETTINGS := --set proxy_model_id=olmo3_1m --set chinchilla_multiple=0.0015
# BACKEND=slurm submits the five runs as Slurm jobs instead (SLURM_CONF or the cluster's defaults say where;
# `make demo-slurm` starts a private one-node Slurm on this machine for it), one thread per job.
BACKEND ?= local
ifeq ($(BACKEND),slurm)
DEMO_BACKEND := --backend slurm --set 'env={OMP_NUM_THREADS: "1"}'
else
DEMO_BACKEND := --backend $(BACKEND) --max-parallel 5
endif

demo: install
	$(BIN)/olmix validate config/
	$(BIN)/olmix demo-data $(DEMO_DATA)
	$(BIN)/olmix launch run --config config/examples/launch/quality_thresholds/ \
	  --path-map s3://ai2-llm/preprocessed/=$(DEMO_DATA)/ $(DEMO_SETTINGS) $(DEMO_BACKEND) \
	  --runs-dir $(DEMO)/runs --trainer-command "$(DEMO_TRAINER)" --yes --wait
	$(BIN)/olmix results --runs-dir $(DEMO)/runs --plot $(DEMO)/results.png

# The demo through a private one-node Slurm (slurmctld, slurmd, munged as root; apt-get install slurmctld
# slurmd slurm-client munge), started for it and stopped after.
demo-slurm: install
	$(PY) -m tests.services.slurmcluster -- $(MAKE) demo BACKEND=slurm

generate: install
	$(PY) -m tools.generate $(GEN) docs -- $(CODEGEN_FLAGS)

check-generated: install
	$(PY) -m tools.generate $(GEN) docs --check -- $(CODEGEN_FLAGS)

validate: install
	$(BIN)/check-jsonschema --check-metaschema $(SCHEMAS)
	set -e; for schema in $(SCHEMAS); do \
	  files=$$($(PY) -m tools.modelines $$schema config); \
	  if [ -n "$$files" ]; then $(BIN)/check-jsonschema --schemafile $$schema $$files; fi; \
	done
	$(BIN)/olmix validate config/

lint: install
	$(BIN)/ruff check olmix tools tests
	$(BIN)/ruff format --check olmix tools tests

typecheck: install
	$(BIN)/mypy

# The tests compile the checkout's modules (and pytest its rewritten tests) in every process they start;
# with PYTHONDONTWRITEBYTECODE set nothing of that is kept, so the tests keep it in __pycache__ (ignored by
# git) whatever the environment says: about 4 s of CPU less per run of test-fast.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/pytest

test: install
	$(PYTEST) -q

# The tests a developer runs often: all but those marked slow (real trainings, the fuzzer, Node, S3 and
# language servers, launches in subprocesses, the real-process twins of in-process CLI tests); about 20 s
# of CPU. `make test` still runs everything.
test-fast: install
	$(PYTEST) -q -m "not slow"

# Generated experiment configs must match the studies they come from.
check-configs: install
	$(BIN)/olmix generate quality-thresholds config/studies/quality_thresholds.yaml \
	  --out config/examples/launch/quality_thresholds --check

# Everything but the tests (CI runs `make test` first, then this).
check-static: lint typecheck check-generated check-configs validate

check: check-static test

# The mixture-optimization loop on the demo corpus: a swarm of eight 1M-parameter proxies, the fit and its
# proposal, then the proposal trained beside the uniform mixture, and the verdict with the numbers.
SWARM := $(DEMO)/swarm
SWARM_CONFIG := config/examples/swarm/demo_swarm.yaml
SWARM_OBJECTIVE := --objective eval:all_web=0.5 --objective eval:wikipedia=0.5

demo-swarm: install
	$(BIN)/olmix demo-data $(DEMO_DATA)
	OLMIX_PATH_MAP=s3://ai2-llm/preprocessed/=$(DEMO_DATA)/ $(BIN)/olmix generate swarm $(SWARM_CONFIG) \
	  --out $(SWARM)/configs --force
	$(BIN)/olmix launch run --config $(SWARM)/configs/ --path-map s3://ai2-llm/preprocessed/=$(DEMO_DATA)/ \
	  --max-parallel 8 --runs-dir $(SWARM)/runs --trainer-command "$(DEMO_TRAINER)" --yes --wait
	OLMIX_PATH_MAP=s3://ai2-llm/preprocessed/=$(DEMO_DATA)/ $(BIN)/olmix fit --runs-dir $(SWARM)/runs \
	  --group $$(basename $$(dirname $$(ls -t $(SWARM)/runs/*/launch.json | head -1))) --target-config $(SWARM_CONFIG) \
	  $(SWARM_OBJECTIVE) --kl-reg 0.01 --out $(SWARM)/fit --force
	mkdir -p $(SWARM)/final
	cp $(SWARM)/fit/proposal.yaml $(SWARM)/final/proposal.yaml
	$(PY) -m tools.demo_swarm uniform $(SWARM_CONFIG) $(SWARM)/final/uniform.yaml
	$(BIN)/olmix launch run --config $(SWARM)/final/ --path-map s3://ai2-llm/preprocessed/=$(DEMO_DATA)/ \
	  --max-parallel 2 --runs-dir $(SWARM)/final-runs --trainer-command "$(DEMO_TRAINER)" --yes --wait
	$(PY) -m tools.demo_swarm compare $(SWARM)/runs $(SWARM)/final-runs $(SWARM)/fit/fit.json

bench: install
	$(PY) -m tools.bench $(BENCH)

# Differential fuzzing: loader, python-jsonschema, generated models and ajv on 10,000 configs.
fuzz: install
	$(PY) -m tests.support.fuzzing 10000

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache *.egg-info
