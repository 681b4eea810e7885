"""Grad-CAM maps of phrase log-probabilities on a tiny LeViT-in-LLaVA model."""

import math

import numpy as np
import pytest
import torch

from support.scans import lesion_scan, view_of
from support.tables import REPORTS
from support.tiny_models import build_saliency_vlm
from models import format_prompt
from saliency.gradcam import GradCamSettings, PhraseGradCam, vision_tower
from saliency.phrases import build_vocabulary
from saliency.sanity import map_similarity, randomised_vision_copy
from saliency.teacher_forcing import build_teacher_forced_input, phrase_log_probability

QUESTION = "Describe this scan."


@pytest.fixture(scope="module")
def tiny():
    return build_saliency_vlm()


@pytest.fixture(scope="module")
def example(tiny):
    _, processor = tiny
    report = REPORTS[0]
    phrases = build_vocabulary().find(report, include_negated=False)
    view = view_of(lesion_scan(0)[0])
    tf = build_teacher_forced_input(processor, view, format_prompt(processor, QUESTION, answer=report), report)
    return tf, phrases, tf.target_mask(phrases)


def _image_tokens(model, processor):
    return int((build_teacher_forced_input(processor, view_of(lesion_scan(0)[0]),
                                           format_prompt(processor, "q", answer="a"), "a").input_ids
                == model.config.image_token_id).sum())


def test_phrase_positions_decode_to_the_phrase(tiny, example):
    _, processor = tiny
    tf, phrases, _ = example
    assert [p.text for p in phrases] == ["drusen", "subretinal fluid"]
    for phrase in phrases:
        decoded = processor.tokenizer.decode(tf.input_ids[0, tf.phrase_positions(phrase)])
        assert decoded.strip() == phrase.text


def test_maps_have_the_patch_grid_shape_and_are_finite_and_non_negative(tiny, example):
    model, processor = tiny
    tf, phrases, mask = example
    maps = PhraseGradCam(model).maps(tf, mask)
    side = math.isqrt(_image_tokens(model, processor))  # 36 image tokens -> 6x6
    assert maps.shape == (len(phrases), side, side) == (2, 6, 6)
    assert np.isfinite(maps).all() and (maps >= 0).all()
    assert all(np.ptp(m) > 0 for m in maps)  # not flat


def test_maps_equal_an_independent_gradcam_on_the_same_layer(tiny, example):
    """captum + the token-grid hook must equal Grad-CAM computed by hand from autograd."""
    model, _ = tiny
    tf, _, mask = example
    explainer = PhraseGradCam(model)
    maps = explainer.maps(tf, mask)
    layer = vision_tower(model).get_submodule(explainer.layer_name)
    for row, expected_map in enumerate(maps):
        captured = {}
        handle = layer.register_forward_hook(lambda m, a, out: captured.update(tokens=out))
        try:
            score = phrase_log_probability(model, tf.pixel_values, tf.input_ids, tf.attention_mask, mask[row:row + 1])
            (gradient,) = torch.autograd.grad(score.sum(), captured["tokens"])
        finally:
            handle.remove()
        tokens = captured["tokens"][0].detach()  # [36, C]
        weights = gradient[0].mean(0)  # channel weights: gradients averaged over the grid
        manual = torch.relu(tokens @ weights).reshape(6, 6).numpy()
        np.testing.assert_allclose(expected_map, manual, rtol=1e-4, atol=1e-6 * float(np.abs(manual).max()))


def test_gradient_x_activation_equals_the_token_wise_product(tiny, example):
    model, _ = tiny
    tf, _, mask = example
    explainer = PhraseGradCam(model, GradCamSettings(method="gradient_x_activation"))
    maps = explainer.maps(tf, mask)
    layer = vision_tower(model).get_submodule(explainer.layer_name)
    captured = {}
    handle = layer.register_forward_hook(lambda m, a, out: captured.update(tokens=out))
    try:
        score = phrase_log_probability(model, tf.pixel_values, tf.input_ids, tf.attention_mask, mask[1:2])
        (gradient,) = torch.autograd.grad(score.sum(), captured["tokens"])
    finally:
        handle.remove()
    manual = torch.relu((gradient[0] * captured["tokens"][0].detach()).sum(-1)).reshape(6, 6).numpy()
    np.testing.assert_allclose(maps[1], manual, rtol=1e-4, atol=1e-6 * float(np.abs(manual).max()))
    assert not np.allclose(maps, PhraseGradCam(model).maps(tf, mask))
    with pytest.raises(ValueError, match="gradcam.method"):
        PhraseGradCam(model, GradCamSettings(method="lime"))


def test_changing_the_target_phrase_changes_the_map(tiny, example):
    model, _ = tiny
    tf, _, mask = example
    first, second = PhraseGradCam(model).maps(tf, mask)
    assert not np.allclose(first / first.max(), second / second.max(), atol=0.05)


def test_model_is_unchanged_after_a_run(tiny, example):
    model, _ = tiny
    tf, _, mask = example
    frozen = {"model.language_model.embed_tokens.weight", "lm_head.weight"}
    for name, param in model.named_parameters():
        param.requires_grad_(name not in frozen)
    model.train()  # a caller's mode must survive too
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    weights = {k: v.clone() for k, v in model.state_dict().items()}  # BN running stats included
    model.eval()
    with torch.no_grad():
        before = model(input_ids=tf.input_ids, pixel_values=tf.pixel_values, attention_mask=tf.attention_mask).logits
    model.train()

    PhraseGradCam(model, GradCamSettings(smoothing_samples=2)).maps(tf, mask)

    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        after = model(input_ids=tf.input_ids, pixel_values=tf.pixel_values, attention_mask=tf.attention_mask).logits
    assert torch.equal(before, after)
    for param in model.parameters():
        param.requires_grad_(True)


def test_randomised_vision_weights_give_different_maps(tiny, example):
    """Adebayo et al.'s sanity check: maps must depend on the vision weights."""
    model, _ = tiny
    tf, _, mask = example
    maps = PhraseGradCam(model).maps(tf, mask)
    again = PhraseGradCam(model).maps(tf, mask)
    randomised = PhraseGradCam(randomised_vision_copy(model, seed=1)).maps(tf, mask)
    assert map_similarity(maps, again).min() == pytest.approx(1.0)
    assert np.all(np.ptp(randomised.reshape(len(randomised), -1), axis=1) > 0)
    assert map_similarity(maps, randomised).mean() < 0.5
    assert torch.equal(vision_tower(model).encoder.stages[0].layers[0].module.queries_keys_values.linear.weight,
                       tiny[0].model.vision_tower.encoder.stages[0].layers[0].module.queries_keys_values.linear.weight)


def test_phrase_batches_match_one_phrase_at_a_time(tiny, example):
    model, _ = tiny
    tf, _, mask = example
    batched = PhraseGradCam(model, GradCamSettings(phrase_batch_size=8)).maps(tf, mask)
    single = PhraseGradCam(model, GradCamSettings(phrase_batch_size=1)).maps(tf, mask)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6 * float(batched.max()))


def test_smoothing_averages_noisy_copies(tiny, example):
    model, _ = tiny
    tf, _, mask = example
    plain = PhraseGradCam(model).maps(tf, mask)
    torch.manual_seed(0)
    smooth = PhraseGradCam(model, GradCamSettings(smoothing_samples=3, smoothing_std=0.3)).maps(tf, mask)
    assert smooth.shape == plain.shape
    assert np.isfinite(smooth).all() and (smooth >= 0).all()
    assert not np.allclose(smooth, plain)


@pytest.mark.parametrize("layer,side", [("encoder.stages.0", 6), ("patch_embeddings", 12)])
def test_explicit_layers_give_their_own_grid(tiny, example, layer, side):
    model, _ = tiny
    tf, phrases, mask = example
    maps = PhraseGradCam(model, GradCamSettings(layer=layer)).maps(tf, mask)
    assert maps.shape == (len(phrases), side, side)
    assert np.isfinite(maps).all() and (maps >= 0).all()


def test_unknown_layer_names_the_options(tiny, example):
    model, _ = tiny
    tf, _, mask = example
    with pytest.raises(ValueError, match="not a module of the vision tower.*encoder.stages"):
        PhraseGradCam(model, GradCamSettings(layer="encoder.blocks.9")).maps(tf, mask)
    with pytest.raises(ValueError, match=r"none of \['embeddings.patch_embedding', 'encoder.blocks.9'\]"):
        PhraseGradCam(model, GradCamSettings(layer=["embeddings.patch_embedding", "encoder.blocks.9"])).maps(tf, mask)


@pytest.mark.parametrize("layers,chosen", [(["embeddings.patch_embedding", "patch_embeddings", "auto"], "patch_embeddings"),
                                           (["embeddings.patch_embedding", "auto"], "encoder.stages.1"),
                                           (["auto", "patch_embeddings"], "encoder.stages.1")])
def test_a_layer_list_takes_the_first_the_tower_has(tiny, example, layers, chosen):
    # One setting for towers that name their stems differently: a ViT's is embeddings.patch_embeddings.
    model, _ = tiny
    tf, _, mask = example
    explainer = PhraseGradCam(model, GradCamSettings(layer=layers))
    maps = explainer.maps(tf, mask)
    assert explainer.layer_name == chosen
    np.testing.assert_array_equal(maps, PhraseGradCam(model, GradCamSettings(layer=chosen)).maps(tf, mask))
