"""The reference repository's config names are the real names: part-2 modules, `dataset=retina_hard`
and the external baselines' registry entries (which fail with the steps that provide the model)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from support.configs import compose_config
from support.tables import write_curriculum_table

from curriculum.api import generate_curriculum
from dataset.qa_records import read_records
from models.registry import ModelNotFoundError, resolve_model

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_MODULES = ["1_advanced_biomarkers_guidelines", "2_specific_qa", "3_general_qa",
                     "4_staging_introduction_guidelines", "5_staging_logic_guidelines",
                     "6_referral_reasoning_guidelines", "7_report_writing", "8_full_report_writing_guidelines",
                     "9_staging_accuracy_guidelines", "10_staging_accuracy"]
EXTERNAL = {"llava_med_384px": "microsoft/llava-med-v1.5-mistral-7b", "med_flamingo_384px": "med-flamingo/med-flamingo"}


@pytest.mark.parametrize("module", REFERENCE_MODULES)
def test_each_reference_module_name_composes_and_names_itself(module, tmp_path):
    cfg = compose_config("generate_curriculum_part2", tmp_path,
                         ["dataset/task=specialist_annotate", f"dataset/task/curriculum={module}"])
    assert cfg.dataset.task.curriculum.name == module


def test_all_modules_and_the_part_2_stage_use_exactly_the_reference_names(tmp_path):
    cfg = compose_config("generate_curriculum_part2", tmp_path,
                         ["dataset/task=specialist_annotate", "dataset/task/curriculum=all_modules"])
    assert [m.name for m in cfg.dataset.task.curriculum.modules.values()] == REFERENCE_MODULES
    stage = compose_config("vision_language_pretraining", tmp_path,
                           ["dataset/task=curriculum_part_2_advanced_retinal_specialism"])
    assert sorted(stage.dataset.task.curricula) == sorted(REFERENCE_MODULES)


def test_a_renamed_module_writes_its_store_under_the_reference_name(tmp_path):
    table = write_curriculum_table(tmp_path / "data", copies=1)
    cfg = compose_config("generate_curriculum_part2", tmp_path,
                         [f"generation.annotations_file={table}", "model/language_model=rules",
                          "dataset/task=specialist_annotate", "dataset/task/curriculum=3_general_qa"])
    summary = generate_curriculum(cfg)
    store = Path(summary["modules"][0]["store"])
    assert store.name == "3_general_qa" or store.parent.name == "3_general_qa"
    records = read_records(tmp_path / "outputs" / "curriculum" / "3_general_qa" / "records.jsonl")
    assert records and {r.module for r in records} == {"3_general_qa"}


def test_retina_hard_is_the_stronger_augmentation(tmp_path):
    hard = compose_config("vision_language_pretraining", tmp_path, ["dataset=retina_hard"]).dataset
    plain = compose_config("vision_language_pretraining", tmp_path, ["dataset=retina"]).dataset
    assert hard.name == "retina_hard"
    assert hard.augmentation.rotation_degrees > plain.augmentation.rotation_degrees
    assert hard.crop_size == plain.crop_size


@pytest.mark.parametrize("name", sorted(EXTERNAL))
def test_external_baseline_entry_fails_with_the_download_step(name, tmp_path):
    cfg = compose_config("closed_ended_evaluation", tmp_path, [f"pretrained_models={name}"])
    entry = OmegaConf.to_container(cfg.pretrained_models, resolve=True)
    with pytest.raises(ModelNotFoundError, match=f"huggingface-cli download {EXTERNAL[name]}"):
        resolve_model(entry)


def test_external_baseline_fails_through_the_demo_cli(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "run/demos/inference.py", "pretrained_models=llava_med_384px",
                           f"paths.output_dir={tmp_path}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "huggingface-cli download microsoft/llava-med-v1.5-mistral-7b" in output
