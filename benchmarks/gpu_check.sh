#!/usr/bin/env bash
# A short check of the CUDA paths, for a machine with one GPU and the project installed:
#   the `gpu` tests; the embedded default trained on CUDA in bf16 (vision pretraining, then part 1);
#   closed-ended evaluation and Grad-CAM on CUDA; the training benchmark's gpu preset
#   (Llama-3-8B / ViT-L/16 shapes, random weights).
# Usage: bash benchmarks/gpu_check.sh [LOG_DIR]   (about 6 minutes on one H100)
# Everything is written under a fresh temporary root; each step prints `== name` and its rc.
set -uo pipefail
log_dir=${1:-gpu_check_logs}
mkdir -p "$log_dir"
log_dir=$(cd "$log_dir" && pwd)
py=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
work=$(mktemp -d)
paths=("paths.output_dir=$work/outputs")
failed=0

step() {  # step NAME COMMAND...: run, keep the log, report the exit status
    local name=$1; shift
    echo "== $name"
    local started=$SECONDS
    "$@" > "$log_dir/$name.log" 2>&1
    local rc=$?
    tail -n 4 "$log_dir/$name.log"
    echo "== $name: rc=$rc, $((SECONDS - started)) s"
    [ "$rc" -eq 0 ] || failed=1
}

nvidia-smi -L
"$py" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
step gpu_tests "$py" -m pytest -q -m gpu -p no:cacheprovider tests
step phantom "$py" run/make_dataset.py "${paths[@]}" dataset.phantom.num_images=600
step curriculum_part1 "$py" run/generate_curriculum_part1.py "${paths[@]}" dataset=retina model/language_model=rules \
    dataset/task=tabular_annotate dataset/task/curriculum=tabular_annotate_rules
step train_part1_bf16 "$py" run/vision_language_pretraining.py "${paths[@]}" dataset=retina pretrained_models=new \
    dataset/task=curriculum_part_1_introduction_to_retina training.mixed_precision=bf16 training.max_steps=100 \
    training.batch_size=32 training.vision_pretraining.steps=200
step evaluate_staging "$py" run/closed_ended_evaluation.py "${paths[@]}" dataset=retina \
    dataset/task=closed_ended_specialist_staging "models=[retinavlm_base_192px]" evaluation.max_images=60
step evaluate_staging_two_step "$py" run/closed_ended_evaluation.py "${paths[@]}" dataset=retina \
    dataset/task=closed_ended_specialist_staging "models=[retinavlm_base_192px]" evaluation.max_images=24 \
    evaluation.answer_mode=two_step
step gradcam "$py" run/visual_language_gradcam.py "${paths[@]}" dataset=retina dataset/task=language_visual_attention \
    pretrained_models=retinavlm_base_192px dataset.task.max_images=4
step benchmark_gpu_preset "$py" benchmarks/training_throughput.py --preset gpu --steps 5
rm -rf "$work"
exit $failed
