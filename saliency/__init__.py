"""Saliency: Grad-CAM maps from the phrases of a generated report to regions of the image.

Public API:
- `run_visual_language_gradcam(cfg)`: the whole run behind `run/visual_language_gradcam.py`.
- `build_vocabulary(...)` / `PhraseVocabulary.find(report)`: finding phrases in a report.
- `PhraseGradCam(model, GradCamSettings(...)).maps(example, target_mask)`: [P, g, g] maps.
- `build_teacher_forced_input(processor, image, text, answer)`: tokens, pixels, phrase positions.
- `explain_report(...)`, `score_explanation(...)`, `save_explanation(...)`: one image end to end.
- `score_map`, `summarise_scores`, `crop_mask`, `upsample_map`: localisation against lesion masks.
"""

from saliency.explain import ImageExplanation, explain_report, save_explanation, score_explanation
from saliency.gradcam import GradCamSettings, PhraseGradCam, attribution_mode, resolve_layer, vision_tower
from saliency.localisation import crop_mask, load_masks, score_map, summarise_scores, upsample_map
from saliency.phrases import Phrase, PhraseVocabulary, build_vocabulary
from saliency.pipeline import run_visual_language_gradcam
from saliency.teacher_forcing import TeacherForcedInput, build_teacher_forced_input, phrase_log_probability

__all__ = [
    "GradCamSettings",
    "ImageExplanation",
    "Phrase",
    "PhraseGradCam",
    "PhraseVocabulary",
    "TeacherForcedInput",
    "attribution_mode",
    "build_teacher_forced_input",
    "build_vocabulary",
    "crop_mask",
    "explain_report",
    "load_masks",
    "phrase_log_probability",
    "resolve_layer",
    "run_visual_language_gradcam",
    "save_explanation",
    "score_explanation",
    "score_map",
    "summarise_scores",
    "upsample_map",
    "vision_tower",
]
