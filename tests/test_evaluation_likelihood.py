"""Option-likelihood scoring against a direct teacher-forced computation on a tiny model."""

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.likelihood import score_options, score_questions
from models import format_prompt, load_vlm

OPTIONS = ["Healthy.", "Early AMD.", "Late wet AMD (active)."]
QUESTION = "What is the AMD stage of this scan?"


@pytest.fixture(scope="module")
def tiny(tiny_vlm_dir):
    return load_vlm(tiny_vlm_dir, device="cpu")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (192, 192), dtype=np.uint8)) for _ in range(2)]


def _by_hand(model, processor, image, answer, end_of_turn=True, reduction=np.sum):
    prompt = format_prompt(processor, QUESTION)
    full = format_prompt(processor, QUESTION, answer) if end_of_turn else prompt + answer
    inputs = processor(images=[image.convert("RGB")], text=[full], return_tensors="pt", add_special_tokens=False)
    start = processor(images=[image.convert("RGB")], text=[prompt], return_tensors="pt",
                      add_special_tokens=False)["input_ids"].shape[1]
    with torch.no_grad():
        log_probs = model(**inputs).logits.log_softmax(-1)[0]
    ids = inputs["input_ids"][0]
    return float(reduction([log_probs[t - 1, ids[t]].item() for t in range(start, len(ids))]))


def test_scores_match_teacher_forcing_and_batching(tiny, images):
    model, processor = tiny
    batched = score_options(model, processor, images, QUESTION, OPTIONS, batch_size=4)
    single = score_options(model, processor, images, QUESTION, OPTIONS, batch_size=1)
    assert batched.shape == (2, 3)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert batched[1, 2] == pytest.approx(_by_hand(model, processor, images[1], OPTIONS[2]), abs=1e-4)


def test_summed_scores_are_the_default_and_mean_divides_by_the_option_length(tiny, images):
    model, processor = tiny
    summed = score_options(model, processor, images, QUESTION, OPTIONS)
    mean = score_options(model, processor, images, QUESTION, OPTIONS, reduction="mean")
    assert mean[0, 2] == pytest.approx(_by_hand(model, processor, images[0], OPTIONS[2], reduction=np.mean),
                                       abs=1e-4)
    lengths = [len(processor.tokenizer(format_prompt(processor, QUESTION, o), add_special_tokens=False)["input_ids"])
               - len(processor.tokenizer(format_prompt(processor, QUESTION), add_special_tokens=False)["input_ids"])
               for o in OPTIONS]
    np.testing.assert_allclose(summed, mean * np.array(lengths)[None], rtol=1e-4)
    assert lengths[2] > lengths[0]  # the comparison above tells sum from mean
    with pytest.raises(ValueError, match="reduction 'max' is unknown"):
        score_options(model, processor, images, QUESTION, OPTIONS, reduction="max")


def test_prefix_scoring_leaves_out_end_of_turn(tiny, images):
    model, processor = tiny
    prefix = score_options(model, processor, images[:1], QUESTION, OPTIONS, end_of_turn=False)
    assert prefix[0, 1] == pytest.approx(_by_hand(model, processor, images[0], OPTIONS[1], end_of_turn=False),
                                         abs=1e-4)
    complete = score_options(model, processor, images[:1], QUESTION, OPTIONS)
    assert not np.allclose(prefix, complete)


def test_shared_prompt_cache_matches_full_sequences(tiny, images):
    model, processor = tiny
    cached = score_options(model, processor, images, QUESTION, OPTIONS, end_of_turn=False)
    full = score_options(model, processor, images, [QUESTION] * len(images), OPTIONS, end_of_turn=False)
    np.testing.assert_allclose(cached, full, atol=1e-4)


def test_questions_sharing_the_image_score_as_each_question_alone(tiny_vlm_dir, images):
    model, processor = load_vlm(tiny_vlm_dir, device="cpu")
    with torch.no_grad():  # the random projector's features are too faint to tell images apart
        for weight in model.model.multi_modal_projector.parameters():
            weight.mul_(300)
    questions = [QUESTION, "Is there drusen?", "Is there subretinal fluid in the fovea of this scan?"]
    options = [OPTIONS, ["There is drusen", "There is no drusen"], ["Yes.", "No.", "Maybe."]]
    ends = [True, False, True]
    shared = score_questions(model, processor, images * 3, questions, options, batch_size=4, end_of_turn=ends)
    alone = [score_options(model, processor, images * 3, q, o, end_of_turn=e) for q, o, e in zip(questions, options, ends)]
    assert [s.shape for s in shared] == [(6, 3), (6, 2), (6, 3)]
    for got, expected in zip(shared, alone):
        np.testing.assert_allclose(got, expected, atol=1e-4)
    assert abs(alone[0][0] - alone[0][1]).max() > 0.01  # 100x the tolerance: the images' scores differ: a mix-up would show
