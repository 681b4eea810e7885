#!/usr/bin/env bash
# Fingerprint what a seed produces, to show that a refactor changed no behaviour: build the phantom,
# generate the rule-based curricula (part 1, all part-2 modules, the demo curriculum) and train both
# stages with `training=debug`, then print one SHA-256 per artefact. Run it before and after a
# change and diff the two outputs:
#   bash benchmarks/behaviour_fingerprint.sh /tmp/before > before.txt   # (on the old commit)
#   bash benchmarks/behaviour_fingerprint.sh /tmp/after > after.txt && diff before.txt after.txt
# Takes about five minutes on 2 cores. Logs go to <folder>/log.txt.
set -euo pipefail
OUT=${1:?usage: behaviour_fingerprint.sh OUTPUT_FOLDER}
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
rm -rf "$OUT" && mkdir -p "$OUT"
LOG="$OUT/log.txt"
common=(paths.output_dir="$OUT" seed=0)
{
  $PY run/make_dataset.py "${common[@]}" run_dir="$OUT/runs/phantom"
  $PY run/generate_curriculum_part1.py "${common[@]}" dataset=retina model/language_model=rules \
    dataset/task=tabular_annotate dataset/task/curriculum=tabular_annotate_rules run_dir="$OUT/runs/c1"
  $PY run/generate_curriculum_part2.py "${common[@]}" dataset=retina model/language_model=rules \
    dataset/task=specialist_annotate dataset/task/curriculum=all_modules run_dir="$OUT/runs/c2"
  $PY run/demos/generate_curriculum.py "${common[@]}" paths=template model/language_model=rules \
    dataset/task=specialist_annotate dataset/task/curriculum=demo_curriculum run_dir="$OUT/runs/demo"
  $PY run/vision_language_pretraining.py "${common[@]}" dataset=retina pretrained_models=new \
    dataset/task=curriculum_part_1_introduction_to_retina training=debug run_dir="$OUT/runs/t1"
  $PY run/vision_language_pretraining.py "${common[@]}" dataset=retina pretrained_models=retinavlm_base_192px \
    dataset/task=curriculum_part_2_advanced_retinal_specialism training=debug run_dir="$OUT/runs/t2"
} >"$LOG" 2>&1
cd "$OUT"
# Artefacts only. Left out: run folders (logs, timings, resolved configs), the raw-response audit
# logs and the model cards (both carry the time they were written).
find phantom curriculum models -type f \
  ! -name "raw_responses.jsonl" ! -name "README.md" ! -name "model_card.json" \
  -print0 | sort -z | xargs -0 sha256sum
