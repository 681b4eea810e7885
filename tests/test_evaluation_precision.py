"""Inference precision (`evaluation.generation.mixed_precision`): option scoring under bf16 autocast
over float32 weights, generation left in float32, and a clear error for unknown settings."""

import numpy as np
import pytest
import torch
from PIL import Image

from dataset.errors import ConfigError
from evaluation.vision_models import build_answerer
from models.precision import autocast, resolve_mixed_precision

OPTIONS = ["Healthy.", "Early AMD.", "Late wet AMD (active)."]
QUESTION = "What is the AMD stage of this scan?"
GENERATION = {"batch_size": 2, "max_new_tokens": 4, "score_batch_size": 8, "option_score": "sum",
              "device": "cpu", "report_cache_dir": False}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (192, 192), dtype=np.uint8)) for _ in range(3)]


def _answerer(tiny_vlm_dir, precision):
    entry = {"name": "tiny", "kind": "local", "path": str(tiny_vlm_dir)}
    return build_answerer(entry, None, {**GENERATION, "mixed_precision": precision})


def _output_dtypes(model):
    """Dtypes of the language model's first linear layer's outputs, recorded per forward pass."""
    seen = []
    layer = next(m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "language" in name)
    return seen, layer.register_forward_hook(lambda module, args, out: seen.append(out.dtype))


def test_bf16_scoring_runs_under_autocast_and_generation_stays_float32(tiny_vlm_dir, images):
    dtypes, scores = {}, {}
    for precision in ("no", "bf16"):
        answerer = _answerer(tiny_vlm_dir, precision)
        seen, hook = _output_dtypes(answerer.model)
        scores[precision] = answerer.score_options(images, QUESTION, OPTIONS)
        dtypes[precision, "score"] = set(seen)
        seen.clear()
        answerer.generate(images[:1], [QUESTION])
        dtypes[precision, "generate"] = set(seen)
        hook.remove()
        assert {p.dtype for p in answerer.model.parameters()} == {torch.float32}
    assert dtypes == {("no", "score"): {torch.float32}, ("bf16", "score"): {torch.bfloat16},
                      ("no", "generate"): {torch.float32}, ("bf16", "generate"): {torch.float32}}
    # bf16 rounds every activation: the scores move a little, not the scale (sums of ~5 tokens).
    assert not np.array_equal(scores["no"], scores["bf16"])
    np.testing.assert_allclose(scores["bf16"], scores["no"], atol=0.5)


def test_auto_resolves_per_machine_and_bad_settings_name_their_key(tiny_vlm_dir):
    answerer = _answerer(tiny_vlm_dir, "auto")
    assert answerer.mixed_precision == resolve_mixed_precision("auto")
    assert _answerer(tiny_vlm_dir, "no").mixed_precision == "no"
    with pytest.raises(ConfigError, match="evaluation.generation.mixed_precision must be one of no, bf16, fp16, "
                                          "auto, got 'fp8'"):
        _answerer(tiny_vlm_dir, "fp8")
    entry = {"name": "tiny", "kind": "local", "path": str(tiny_vlm_dir)}
    with pytest.raises(ConfigError, match="demo.mixed_precision must be one of"):
        build_answerer(entry, None, {**GENERATION, "mixed_precision": "half"}, "demo")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
            with autocast("fp16", "cpu"):
                pass
