# The README's two set-up commands: `make pipeline` (install, then run the whole blueprint on the
# embedded phantom data) and `make test` (install, then run every test that can run here).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Some machine images set PYTHONDONTWRITEBYTECODE=1; then every Python process compiles torch's and
# transformers' sources again (8-16 s each on 2 cores, more than the imports themselves). Our own
# commands let Python cache the bytecode in .venv on first import.
unexport PYTHONDONTWRITEBYTECODE
LLM ?= rules

.PHONY: install pipeline seeds part1 trial test test-fast

# --no-compile: Python writes bytecode for the modules a run imports when it first imports them
# (see PYTHONDONTWRITEBYTECODE above); compiling every installed file up front (torch,
# transformers) doubled the install's time.
$(BIN)/activate: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/activate

install: $(BIN)/activate

# The seed README's command sequence on the embedded phantom, offline (LLM=rules; LLM=gpt-4o
# needs OPENAI_API_KEY), then the summary table (outputs/pipeline/summary.md, also printed).
# run/pipeline.py runs the commands (dataset/step_runner.py lists them) in one Python process, so
# torch and transformers are imported once rather than once per step. Each step runs into
# outputs/pipeline/<step>/ and leaves a stamp <step>.done holding its seconds and a hash of its
# settings: a rerun skips finished steps whose settings are unchanged (a changed one runs again,
# with every step after it); `make pipeline FORCE=1` runs everything again.
PY := $(BIN)/python

pipeline: install
	$(PY) run/pipeline.py --llm $(LLM) $(if $(FORCE),--force)

# Train and evaluate the default with several seeds (same phantom and curricula, which `make
# pipeline` makes first) and write the mean and spread of every metric:
# outputs/seeds/seed_summary.{md,csv}. `make seeds SEEDS="0 1 2 3"` for more. In one process
# (run/seeds.py); stamps as in `make pipeline` (a step whose settings changed runs again).
SEEDS ?= 0 1 2
SEED_DIR := outputs/seeds
seeds: install
	$(PY) run/seeds.py --seeds $(SEEDS) --dir $(SEED_DIR) $(if $(FORCE),--force)

# One seed's part-1 model, trained once and shared by `make seeds` and `make trial`:
# outputs/seeds/seed_SEED/models (stamped train_part_1.done).
part1: install
	$(PY) run/seeds.py --seeds $(SEED) --dir $(SEED_DIR) --part-1-only

# Try a change on the VALIDATION split before it becomes a default (docs/experiments.md), after
# `make pipeline` (run/trial.py, in one process, with stamps): copy the pipeline's curricula,
# regenerate MODULE (one or more) with the GEN overrides and, with P1GEN, part 1's module; then per
# seed (SEEDS) train part 2 (TRAIN overrides) from that seed's part-1 model (trained here, with the
# P1TRAIN overrides, when P1GEN or P1TRAIN is given; else the shared one in
# SEED_DIR/seed_<s>/models, made with `make part1` if missing) and score TASKS (raw answers; add
# biomarkers with TASKS="staging referral biomarkers") and the reports. PART2=no stops after part
# 1 and scores the part-1 model alone. Mean and spread: outputs/trials/NAME/seed_summary.md.
#   make trial NAME=default
#   make trial NAME=conclusion MODULE=7_report_writing GEN='++dataset.task.curriculum.options.conclusion=true'
#   make trial NAME=stage4 PART2=no P1GEN='++dataset.task.curriculum.options.stage_questions=4 dataset.task.curriculum.num_questions=23'
#   make trial NAME=tower P1TRAIN='training.vision_pretraining.biomarker_balance=0.5' TASKS="staging referral biomarkers"
TASKS ?= staging referral
trial: install
	@test -n "$(NAME)" || { echo "make trial needs NAME=<a name for this trial>"; exit 2; }
	$(PY) run/trial.py $(NAME) --seeds $(SEEDS) --tasks $(TASKS) --seed-dir $(SEED_DIR) --llm $(LLM) \
	  $(if $(MODULE),--module $(MODULE)) $(if $(GEN),--gen $(GEN)) $(if $(P1GEN),--part-1-gen $(P1GEN)) \
	  $(if $(P1TRAIN),--part-1-train $(P1TRAIN)) $(if $(TRAIN),--train $(TRAIN)) \
	  $(if $(filter no,$(PART2)),--no-part-2) $(if $(FORCE),--force)

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"
