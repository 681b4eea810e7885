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
# `make pipeline`: copy the pipeline's curricula, regenerate MODULE (one or more, if given) with the
# GEN overrides and, with P1GEN, part 1's module with those overrides; then per seed train part 2
# (TRAIN overrides) from that seed's part-1 model (trained here, with the P1TRAIN training
# overrides, when P1GEN or P1TRAIN is given; else the shared one, made with `make part1` if neither
# `make pipeline`, for seed 0, nor `make seeds` made it) and score the closed-ended TASKS (raw answers; add biomarkers with
# TASKS="staging referral biomarkers") and the open-ended reports. PART2=no stops after part 1 and
# scores the part-1 model alone. Mean and spread: outputs/trials/NAME/seed_summary.md.
#   make trial NAME=default
#   make trial NAME=conclusion MODULE=7_report_writing GEN='++dataset.task.curriculum.options.conclusion=true'
#   make trial NAME=stage4 PART2=no P1GEN='++dataset.task.curriculum.options.stage_questions=4 dataset.task.curriculum.num_questions=23'
#   make trial NAME=tower P1TRAIN='training.vision_pretraining.biomarker_balance=0.5' TASKS="staging referral biomarkers"
TRIAL := outputs/trials/$(NAME)
TASKS ?= staging referral
PART2 ?= yes
# Whether this trial trains its own part-1 models.
OWN_PART1 := $(strip $(P1GEN)$(P1TRAIN))
VAL := evaluation.split=validation paths.curriculum_dir=$(TRIAL)/curriculum
trial: install
	@test -n "$(NAME)" || { echo "make trial needs NAME=<a name for this trial>"; exit 2; }
	@test -d outputs/curriculum || { echo "make trial needs the curricula of make pipeline (outputs/curriculum)"; exit 2; }
	@if [ ! -f $(TRIAL)/curriculum.done ]; then \
	  rm -rf $(TRIAL)/curriculum && mkdir -p $(TRIAL) && cp -r outputs/curriculum $(TRIAL)/curriculum || exit 1; \
	  for m in $(MODULE); do rm -rf $(TRIAL)/curriculum/$$m && \
	    $(PY) run/generate_curriculum_part2.py dataset=retina model/language_model=$(LLM) dataset/task=specialist_annotate \
	      dataset/task/curriculum=$$m $(GEN) paths.curriculum_dir=$(TRIAL)/curriculum run_dir=$(TRIAL)/generate_$$m || exit 1; done; \
	  if [ -n "$(P1GEN)" ]; then rm -rf $(TRIAL)/curriculum/tabular_annotate_rules && \
	    $(PY) run/generate_curriculum_part1.py dataset=retina model/language_model=$(LLM) dataset/task=tabular_annotate \
	      dataset/task/curriculum=tabular_annotate_rules $(P1GEN) paths.curriculum_dir=$(TRIAL)/curriculum run_dir=$(TRIAL)/generate_part_1 || exit 1; fi; \
	  touch $(TRIAL)/curriculum.done; fi
	@for s in $(SEEDS); do \
	  d=$(TRIAL)/seed_$$s; part1=$(SEED_DIR)/seed_$$s/models/retinavlm_base_192px; \
	  if [ -f $$d/done ]; then echo "== $(NAME) seed $$s: done before"; continue; fi; \
	  echo "== $(NAME) seed $$s"; mkdir -p $$d/models; \
	  if [ -n "$(OWN_PART1)" ]; then \
	    $(PY) run/vision_language_pretraining.py dataset=retina pretrained_models=new dataset/task=curriculum_part_1_introduction_to_retina seed=$$s $(P1TRAIN) paths.curriculum_dir=$(TRIAL)/curriculum paths.model_dir=$$d/models run_dir=$$d/train_part_1 || exit 1; \
	  else \
	    if [ $$s = 0 ] && [ -d outputs/models/retinavlm_base_192px ]; then part1=outputs/models/retinavlm_base_192px; fi; \
	    if [ ! -d $$part1 ]; then $(MAKE) --no-print-directory part1 SEED=$$s || exit 1; fi; \
	    cp -r $$part1 $$d/models/; \
	  fi; \
	  model=retinavlm_base_192px; models=[retinavlm_base_192px]; \
	  if [ "$(PART2)" != no ]; then \
	    $(PY) run/vision_language_pretraining.py dataset=retina pretrained_models=retinavlm_base_192px dataset/task=curriculum_part_2_advanced_retinal_specialism seed=$$s $(TRAIN) paths.curriculum_dir=$(TRIAL)/curriculum paths.model_dir=$$d/models run_dir=$$d/train_part_2 || exit 1; \
	    model=specialist_v5_192px; models=[specialist_v5_192px]; if [ -n "$(OWN_PART1)" ]; then models=[specialist_v5_192px,retinavlm_base_192px]; fi; \
	  fi; \
	  for task in $(TASKS); do \
	    $(PY) run/closed_ended_evaluation.py pretrained_models=$$model "models=$$models" dataset=retina dataset/task=closed_ended_specialist_$$task $(VAL) evaluation.calibration.split=null evaluation.statistics.n_resamples=200 paths.model_dir=$$d/models run_dir=$$d/closed_ended_$$task || exit 1; \
	  done; \
	  if [ "$(PART2)" != no ]; then \
	    $(PY) run/open_ended_evaluation.py pretrained_models=specialist_v5_192px dataset=retina $(VAL) evaluation.statistics.n_resamples=200 paths.model_dir=$$d/models run_dir=$$d/open_ended || exit 1; \
	  fi; \
	  touch $$d/done; \
	done
	$(PY) run/summarise_seeds.py seeds_dir=$(TRIAL) run_dir=$(TRIAL)/summary

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"
