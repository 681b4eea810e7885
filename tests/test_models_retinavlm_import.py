"""The RetinaVLM importer on a tiny synthetic release: logits against an independent
re-implementation of the reference forward pass, unexpected input, and the entry scripts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file

from models import check_image_token_count, format_prompt, load_vlm
from models.retinavlm_checkpoint import CheckpointError
from models.retinavlm_import import import_retinavlm
from support.retinavlm_reference import LLAMA, dequantise_rowwise, reference_logits, write_synthetic_release

QUESTIONS = ["What is the AMD stage of this scan?", "Is there any subretinal fluid in this scan?"]
Q_PROJ = "model.llm.model.model.layers.1.self_attn.q_proj"
SHARD_2 = "model-00002-of-00002.safetensors"


def _scans() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    gradient = np.add.outer(np.arange(192), np.arange(192)).astype(np.uint8)
    return [rng.integers(0, 256, (192, 192), dtype=np.uint8), gradient]


def _imported_logits(model, processor, scan: np.ndarray, question: str) -> torch.Tensor:
    inputs = processor(images=[Image.fromarray(scan).convert("RGB")],
                       text=[format_prompt(processor, question)], return_tensors="pt",
                       add_special_tokens=False)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    with torch.no_grad():
        return model(**inputs).logits[0].float()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("retinavlm")
    release = write_synthetic_release(folder)
    report = import_retinavlm(release.source, release.llm_dir, folder / "models" / "retinavlm-specialist",
                              "retinavlm-specialist", dtype="float32", registry_dir=folder / "registry")
    return release, folder, report


def test_imported_logits_match_the_reference_forward_pass(imported):
    release, folder, report = imported
    model, processor = load_vlm(folder / "models" / "retinavlm-specialist", device="cpu")
    assert type(model).__name__ == "LlavaForConditionalGeneration"  # stock class, registered tower
    assert type(model.model.vision_tower).__name__ == "RetinaResNetVisionModel"
    assert check_image_token_count(model, processor) == 36
    embeddings, lm_head = model.get_input_embeddings().weight, model.lm_head.weight
    assert not model.config.tie_word_embeddings and lm_head.data_ptr() != embeddings.data_ptr()
    assert not torch.equal(lm_head, embeddings)  # untied: the release's own lm_head
    for scan in _scans():
        for question in QUESTIONS:
            expected = reference_logits(release, torch.from_numpy(scan), question)
            got = _imported_logits(model, processor, scan, question)
            assert got.shape == expected.shape  # same prompt length and vocabulary
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # The comparison can fail: the spatial (permuted) token order changes the logits.
    spatial = release.resnet.feature_tokens
    release.resnet.feature_tokens = lambda images: _spatial_map(release.resnet, images)
    try:
        permuted = reference_logits(release, torch.from_numpy(_scans()[0]), QUESTIONS[0])
    finally:
        release.resnet.feature_tokens = spatial
    assert (permuted - _imported_logits(model, processor, _scans()[0], QUESTIONS[0])).abs().max() > 1e-3
    assert report["int8_dequantised"] == 2 * 7
    assert report["groups"] == {"vision": 318, "llm": 21, "projector": 2}
    assert report["source_dtypes"]["I8"] == 14 and report["unexpected"] == []
    assert report["aliases_skipped"] == 0
    assert report["parameters"] == sum(p.numel() for p in model.parameters())


def _spatial_map(resnet, images):
    x = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(images))))
    x = resnet.layer4(resnet.layer3(resnet.layer2(resnet.layer1(x))))
    return x.flatten(2).transpose(1, 2)  # [B, 36, C] in spatial order: not what the reference did


def test_dequantisation_is_row_wise(imported):
    release, folder, _ = imported
    stored = load_file(str(release.source / SHARD_2))
    written = load_file(str(folder / "models" / "retinavlm-specialist" / "model.safetensors"))
    codes, scale = stored[f"{Q_PROJ}.weight"], stored[f"{Q_PROJ}.SCB"]
    q_proj = written["model.language_model.layers.1.self_attn.q_proj.weight"]
    assert torch.equal(q_proj, dequantise_rowwise(codes, scale))
    column_wise = codes.float() * scale[None, :] / 127
    assert not torch.allclose(q_proj, column_wise, atol=1e-3)  # square: column scaling corrupts silently
    down = "model.llm.model.model.layers.1.mlp.down_proj"
    assert stored[f"{down}.weight"].shape == (LLAMA["hidden_size"], LLAMA["intermediate_size"])  # non-square
    with pytest.raises(RuntimeError):
        stored[f"{down}.weight"].float() * stored[f"{down}.SCB"][None, :]
    # The single projector layer: linear_1 is llama_proj, linear_2 the identity.
    projector = "model.multi_modal_projector"
    torch.testing.assert_close(written[f"{projector}.linear_1.bias"], release.proj.bias.detach())
    assert torch.equal(written[f"{projector}.linear_2.weight"], torch.eye(LLAMA["hidden_size"]))


def _assert_import_card(model_dir) -> str:
    """The card says where the weights came from, on what terms, and how to load them."""
    card = (model_dir / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["base_model"] == "meta-llama/Meta-Llama-3-8B-Instruct" and "converted" in header["tags"]
    # Stock transformers cannot load the converted tower alone; the license is the release's own terms.
    assert "library_name" not in header and header["license_link"].endswith("RobbieHolland/RetinaVLM")
    assert "RobbieHolland/RetinaVLM" in card and "Llama 3 Community License" in card
    assert "int8 * SCB[:, None] / 127" in card and "## Where it came from" in card
    assert "import models" in card and "no project code" not in card
    assert "trained with the SpecialistVLMs" not in card
    return card


def test_registry_entry_and_card(imported):
    _, folder, report = imported
    entry = (folder / "registry" / "retinavlm-specialist.yaml").read_text()
    assert "kind: local" in entry and "created_by:" in entry and "RobbieHolland/RetinaVLM" in entry
    model_dir = folder / "models" / "retinavlm-specialist"
    card = _assert_import_card(model_dir)
    assert "No closed-ended evaluation of these weights yet" in card
    facts = json.loads((model_dir / "model_card.json").read_text())
    assert facts["imported"]["hub_repo"] == "RobbieHolland/RetinaVLM"
    assert facts["imported"]["source"] == report["source"]
    generation = json.loads((model_dir / "generation_config.json").read_text())
    assert generation["do_sample"] is False and generation["max_new_tokens"] == 750
    assert report["peak_rss_mb"] > 0


def test_bfloat16_import_runs_close_to_the_reference(imported, tmp_path):
    release, _, _ = imported
    import_retinavlm(release.source, release.llm_dir, tmp_path / "bf16", "retinavlm-bf16", dtype="bfloat16")
    model, processor = load_vlm(tmp_path / "bf16", device="cpu")
    assert model.dtype == torch.bfloat16
    scan = _scans()[0]
    got = _imported_logits(model, processor, scan, QUESTIONS[0])
    expected = reference_logits(release, torch.from_numpy(scan), QUESTIONS[0])
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()


def _rewrite_shard(source, change) -> None:
    tensors = load_file(str(source / SHARD_2))
    change(tensors)
    save_file(tensors, str(source / SHARD_2), metadata={"format": "pt"})
    index_path = source / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != SHARD_2}
    index["weight_map"].update({k: SHARD_2 for k in tensors})
    index_path.write_text(json.dumps(index))


def _set(key, value):
    return lambda tensors: tensors.__setitem__(key, value)


CASES = {
    "missing shard": (lambda src: (src / SHARD_2).unlink(), SHARD_2),
    "unknown key": (lambda src: _rewrite_shard(src, _set("model.learnable_p_tokens", torch.zeros(1, 4, 64))),
                    "model.learnable_p_tokens"),
    "int8 without scales": (lambda src: _rewrite_shard(src, lambda t: t.pop(f"{Q_PROJ}.SCB")),
                            f"{Q_PROJ}.weight"),
    "tiled int8 layout": (lambda src: _rewrite_shard(src, _set(f"{Q_PROJ}.weight_format",
                                                               torch.tensor(2, dtype=torch.uint8))),
                          f"{Q_PROJ}.weight_format"),
    "shape mismatch": (lambda src: _rewrite_shard(src, _set("model.llama_proj.bias", torch.zeros(65))),
                       "model.llama_proj.bias"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unexpected_input_stops_naming_file_and_key(case, imported, tmp_path):
    release, _, _ = imported
    source = tmp_path / "release"
    shutil.copytree(release.source, source)
    damage, key = CASES[case]
    damage(source)
    output = tmp_path / "models" / "broken"
    with pytest.raises(CheckpointError) as caught:
        import_retinavlm(source, release.llm_dir, output, "broken", registry_dir=tmp_path / "registry")
    message = str(caught.value)
    assert key in message and ".safetensors" in message
    assert not output.exists() and not (tmp_path / "registry").exists()
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_failure_while_writing_leaves_nothing_behind(imported, tmp_path, monkeypatch):
    release, _, _ = imported
    import models.safetensors_shards as shards

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(shards, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        import_retinavlm(release.source, release.llm_dir, tmp_path / "models" / "x", "x",
                         registry_dir=tmp_path / "registry")
    assert list((tmp_path / "models").iterdir()) == [] and not (tmp_path / "registry").exists()


def test_llm_config_that_does_not_fit_is_named(imported, tmp_path):
    release, _, _ = imported
    llm = tmp_path / "llm"
    shutil.copytree(release.llm_dir, llm)
    config = json.loads((llm / "config.json").read_text())
    config["intermediate_size"] = 128
    (llm / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model-0000\d-of-00002.safetensors: .*mlp.*needs"):
        import_retinavlm(release.source, llm, tmp_path / "out", "x")
    assert not (tmp_path / "out").exists()


def test_alias_keys_are_skipped_and_reported(imported, tmp_path):
    release, _, _ = imported
    source = tmp_path / "release"
    shutil.copytree(release.source, source)
    alias = "model.llama_model.model.layers.1.self_attn.q_proj.weight_format"
    _rewrite_shard(source, _set(alias, torch.tensor(0, dtype=torch.uint8)))
    report = import_retinavlm(source, release.llm_dir, tmp_path / "out", "x", dtype="float32")
    assert report["aliases_skipped"] == 1 and report["int8_dequantised"] == 14


def test_imported_model_runs_through_the_entry_scripts(imported, tmp_path):
    """`run/import_retinavlm.py`, then `run/closed_ended_evaluation.py pretrained_models=retinavlm-specialist`
    on a small phantom and `run/demos/inference.py` on the shipped phantom samples, through the
    functions the scripts call; the evaluation's card refresh keeps the import's provenance."""
    from dataset.phantom import make_dataset
    from evaluation.closed_ended import run_closed_ended_evaluation
    from evaluation.demo import run_demo_inference
    from models.retinavlm_import import run_import
    from support.configs import ROOT, compose_config

    release, _, _ = imported
    models_dir = tmp_path / "models"
    cfg = compose_config("import_retinavlm", tmp_path, [
        f"source={release.source}", f"llm={release.llm_dir}", "name=retinavlm-specialist",
        f"paths.model_dir={models_dir}", f"registry_dir={tmp_path / 'registry'}"])
    report = run_import(cfg)
    assert report["output_dir"] == str(models_dir / "retinavlm-specialist") and "registry_note" not in report
    entry = (tmp_path / "registry" / "retinavlm-specialist.yaml").read_text()
    assert "path: ${paths.model_dir}/retinavlm-specialist" in entry

    phantom = make_dataset(compose_config("make_dataset", tmp_path / "phantom", [
        "dataset.phantom.num_images=24", "dataset.phantom.num_workers=1"]))
    assert phantom["splits"]["test"] >= 3 and phantom["image_size"] != [192, 192]  # the processor resizes
    cfg = compose_config("closed_ended_evaluation", tmp_path / "closed", [
        "pretrained_models=retinavlm-specialist", f"paths.data_dir={phantom['output_dir']}",
        f"paths.model_dir={models_dir}", "evaluation.statistics.n_resamples=20", "evaluation.max_images=3",
        "evaluation.calibration.max_images=2"])
    out = run_closed_ended_evaluation(cfg)
    rows = [json.loads(x) for x in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    own = [r for r in rows if r["model"] == "retinavlm-specialist"]
    assert len(own) == 3 and all(r["model"].startswith("retinavlm-specialist") for r in rows)
    card = _assert_import_card(models_dir / "retinavlm-specialist")
    assert "| staging | accuracy |" in card  # the evaluation joins the card; the provenance stays

    cfg = compose_config("inference", tmp_path / "demo", [
        "pretrained_models=retinavlm-specialist", f"paths.model_dir={models_dir}",
        f"dataset.task.images={ROOT / 'dataset' / 'processed_images'}", "demo.max_new_tokens=3",
        "dataset.task.questions=[What is the AMD stage of this scan?]"])
    records = run_demo_inference(cfg)
    assert len(records) >= 2 and all(r["model"] == "retinavlm-specialist" for r in records)


def test_an_existing_registry_entry_that_points_elsewhere_is_reported(imported, tmp_path):
    from models.retinavlm_import import run_import
    from support.configs import compose_config

    release, _, _ = imported
    registry = tmp_path / "registry"
    registry.mkdir()
    shipped = "name: retinavlm-specialist\nkind: local\npath: ${paths.model_dir}/retinavlm-specialist\n"
    (registry / "retinavlm-specialist.yaml").write_text(shipped)
    elsewhere = tmp_path / "elsewhere" / "rv"
    cfg = compose_config("import_retinavlm", tmp_path, [
        f"source={release.source}", f"llm={release.llm_dir}", "name=retinavlm-specialist",
        f"output_dir={elsewhere}", f"paths.model_dir={tmp_path / 'models'}", f"registry_dir={registry}"])
    report = run_import(cfg)
    assert (registry / "retinavlm-specialist.yaml").read_text() == shipped  # kept as it was
    note = report["registry_note"]
    assert str(tmp_path / "models" / "retinavlm-specialist") in note
    assert f"pretrained_models.path={elsewhere}" in note


def test_imported_model_fine_tunes_under_adapter_only(imported, tmp_path):
    """`training=adapter_only` as shipped (projector only, gradient checkpointing, bf16 autocast),
    shortened; the fine-tuned model keeps the tower, and its card the import's provenance."""
    from hydra import compose, initialize_config_dir

    from models.training import run_vision_language_pretraining
    from support.configs import CONFIGS
    from support.training import training_overrides, write_training_data

    _, folder, _ = imported
    write_training_data(tmp_path)
    start = folder / "models" / "retinavlm-specialist"
    overrides = training_overrides(tmp_path, [
        "pretrained_models=retinavlm-specialist", f"pretrained_models.path={start}",
        "training.max_steps=2", "training.batch_size=2", "training.gradient_accumulation_steps=2",
        "training.warmup_steps=1", "training.eval_every=2", "training.max_eval_samples=4",
        "training.checkpoint_every=2", "training.log_with=[csv]"])
    overrides = ["training=adapter_only" if o == "training=debug" else o for o in overrides]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining", overrides=overrides)
    assert cfg.training.policy.name == "adapter" and cfg.training.gradient_checkpointing
    summary = run_vision_language_pretraining(cfg)
    hidden, features = LLAMA["hidden_size"], 128
    assert summary["steps"] == 2
    assert summary["trainable_parameters"] == features * hidden + hidden * hidden + 2 * hidden  # projector
    model, processor = load_vlm(summary["output_model"], device="cpu")
    assert type(model.model.vision_tower).__name__ == "RetinaResNetVisionModel"
    assert "<Img>" in format_prompt(processor, "Stage?")
    card = (Path(summary["output_model"]) / "README.md").read_text()
    assert "RobbieHolland/RetinaVLM" in card and "trained further" in card and "retinavlm_resnet" in card


@pytest.mark.gpu
def test_imported_model_loads_in_8_bit_on_cuda(imported):
    from models.policies import apply_trainable_policy
    from models.quantization import is_8bit, load_vlm_8bit

    release, folder, _ = imported
    path = folder / "models" / "retinavlm-specialist"
    model = load_vlm_8bit(path)
    assert is_8bit(model) and type(model.model.vision_tower).__name__ == "RetinaResNetVisionModel"
    _, processor = load_vlm(path, device="cpu")
    scan = _scans()[0]
    inputs = processor(images=[Image.fromarray(scan).convert("RGB")],
                       text=[format_prompt(processor, QUESTIONS[0])], return_tensors="pt",
                       add_special_tokens=False).to("cuda")
    with torch.no_grad():
        got = model(**inputs).logits[0].float().cpu()
    expected = reference_logits(release, torch.from_numpy(scan), QUESTIONS[0])
    assert torch.corrcoef(torch.stack([got.flatten(), expected.flatten()]))[0, 1] > 0.95
    model = apply_trainable_policy(model, {"name": "adapter", "load_in_8bit": True})
    assert all("multi_modal_projector" in n for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ["retinavlm-specialist", "retinavlm-base"])
def test_registry_entry_without_an_import_says_how_to_get_the_weights(name, tmp_path):
    from omegaconf import OmegaConf

    from support.configs import compose_config
    from models.registry import ModelNotFoundError, resolve_model

    cfg = compose_config("default", tmp_path, [f"pretrained_models={name}"])
    entry = OmegaConf.to_container(cfg.pretrained_models, resolve=True)
    expected = rf"RobbieHolland/RetinaVLM.*run/import_retinavlm.py .*name={name}"
    with pytest.raises(ModelNotFoundError, match=expected):
        resolve_model(entry)


def test_existing_output_is_kept_unless_overwrite_and_ignored_keys_are_reported(imported, tmp_path):
    release, _, _ = imported
    source = tmp_path / "release"
    shutil.copytree(release.source, source)
    _rewrite_shard(source, _set("model.learnable_p_tokens", torch.zeros(1, 4, 64)))
    output = tmp_path / "out"
    output.mkdir()
    (output / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="overwrite=true"):
        import_retinavlm(source, release.llm_dir, output, "x", ignore_keys=["learnable_p_tokens"])
    assert (output / "mine.txt").read_text() == "keep"
    report = import_retinavlm(source, release.llm_dir, output, "x", overwrite=True,
                              ignore_keys=["learnable_p_tokens"])
    assert report["dropped"] == ["model.learnable_p_tokens"]
    assert not (output / "mine.txt").exists() and (output / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "release"]  # no staging folder left


def test_gradcam_auto_picks_the_last_stage_of_the_imported_model(imported, tmp_path):
    from support.configs import compose_config
    from support.tables import write_masked_table
    from saliency import run_visual_language_gradcam

    _, folder, _ = imported
    data = tmp_path / "data"
    data.mkdir()
    write_masked_table(data, rows=2)
    cfg = compose_config("visual_language_gradcam", tmp_path, [
        "pretrained_models=retinavlm-specialist", f"paths.data_dir={data}",
        f"paths.model_dir={folder / 'models'}", "dataset.task.report_source=annotation",
        "dataset.task.max_images=1"])
    assert list(cfg.saliency.gradcam.layer) == ["patch_embeddings", "auto"]  # a ResNet has no LeViT stem
    result = run_visual_language_gradcam(cfg)  # so auto: the last stage's map, which the tokens are a view of
    assert result["images"] == 1 and result["phrases"] > 0 and result["layer"] == "encoder.stages.3"
