"""Greedy generation with a repetition penalty on the tokens an answer has already written
(`evaluation.generation.repetition_penalty`, `models.generate_answers`)."""

import numpy as np
import pytest
from PIL import Image

from dataset.errors import ConfigError
from evaluation.vision_models import build_answerer, local_model_identity

QUESTION = "Write a report for this OCT scan."
GENERATION = {"batch_size": 2, "max_new_tokens": 24, "device": "cpu", "report_cache_dir": False}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 255, (192, 192), dtype=np.uint8)) for _ in range(2)]


def _written_tokens(tiny_vlm_dir, images, penalty):
    """The token ids each answer wrote (prompt and padding cut off), recorded from the real generate."""
    entry = {"name": "tiny", "kind": "local", "path": str(tiny_vlm_dir)}
    answerer = build_answerer(entry, None, {**GENERATION, "repetition_penalty": penalty})
    model, outputs = answerer.model, []
    generate = model.generate

    def recording(**kwargs):
        output = generate(**kwargs)
        outputs.append(output[:, kwargs["input_ids"].shape[1]:])
        return output

    model.generate = recording
    answerer.generate(images, [QUESTION] * len(images))
    pad = answerer.processor.tokenizer.pad_token_id
    return [[int(t) for t in row if int(t) != pad] for batch in outputs for row in batch]


def test_a_strong_penalty_stops_repeats_and_leaves_the_first_token_alone(tiny_vlm_dir, images):
    plain = _written_tokens(tiny_vlm_dir, images, 1.0)
    penalised = _written_tokens(tiny_vlm_dir, images, 1000.0)
    # An untrained model loops over a few tokens; with the penalty each written token is spent.
    assert any(len(set(row)) < len(row) for row in plain)
    assert all(len(set(row)) == len(row) for row in penalised), penalised
    # The prompt is exempt: before anything is written, the penalty changes nothing.
    assert [row[0] for row in penalised] == [row[0] for row in plain]


def test_the_penalty_is_part_of_the_report_cache_key(tiny_vlm_dir):
    plain = local_model_identity(tiny_vlm_dir, 256)
    assert local_model_identity(tiny_vlm_dir, 256, 1.0) == plain
    assert local_model_identity(tiny_vlm_dir, 256, 1.15) not in (plain, local_model_identity(tiny_vlm_dir, 256, 1.2))


@pytest.mark.parametrize("value", [0.9, "strong", -1])
def test_a_bad_penalty_names_its_key(tiny_vlm_dir, value):
    entry = {"name": "tiny", "kind": "local", "path": str(tiny_vlm_dir)}
    with pytest.raises(ConfigError, match="demo.repetition_penalty must be a number >= 1"):
        build_answerer(entry, None, {**GENERATION, "repetition_penalty": value}, "demo")
