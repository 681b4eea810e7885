# The README's two set-up commands: `make pipeline` (install, then run the whole blueprint on the
# embedded phantom data) and `make test` (install, then run every test that can run here).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
LLM ?= rules

.PHONY: install pipeline test test-fast

$(BIN)/activate: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/activate

install: $(BIN)/activate

# The seed README's command sequence on the embedded phantom, offline (LLM=rules; LLM=gpt-4o
# needs OPENAI_API_KEY).
pipeline: install
	$(BIN)/python run/make_dataset.py
	$(BIN)/python run/generate_curriculum_part1.py dataset=retina model/language_model=$(LLM) dataset/task=tabular_annotate dataset/task/curriculum=tabular_annotate_rules
	$(BIN)/python run/generate_curriculum_part2.py dataset=retina model/language_model=$(LLM) dataset/task=specialist_annotate dataset/task/curriculum=all_modules
	$(BIN)/python run/demos/generate_curriculum.py paths=template model/language_model=$(LLM) dataset/task=specialist_annotate dataset/task/curriculum=demo_curriculum
	$(BIN)/python run/vision_language_pretraining.py dataset=retina pretrained_models=new dataset/task=curriculum_part_1_introduction_to_retina
	$(BIN)/python run/vision_language_pretraining.py dataset=retina pretrained_models=retinavlm_base_192px dataset/task=curriculum_part_2_advanced_retinal_specialism
	for task in staging referral biomarkers; do \
	  $(BIN)/python run/closed_ended_evaluation.py pretrained_models=specialist_v5_192px dataset=retina dataset/task=closed_ended_specialist_$$task models=[specialist_v5_192px,retinavlm_base_192px] || exit 1; \
	done
	$(BIN)/python run/open_ended_evaluation.py pretrained_models=specialist_v5_192px dataset=retina
	$(BIN)/python run/demos/inference.py paths=template
	$(BIN)/python run/visual_language_gradcam.py dataset=retina dataset/task=language_visual_attention pretrained_models=specialist_v5_192px

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"
