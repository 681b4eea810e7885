"""Evaluation of specialist VLMs: closed-ended tasks, open-ended reports, statistics, figures.

Public API (entry functions take the composed Hydra config and return their results):
- `evaluation.closed_ended.run_closed_ended_evaluation(cfg)`: `run/closed_ended_evaluation.py`.
- `evaluation.open_ended.run_open_ended_evaluation(cfg)`: `run/open_ended_evaluation.py`.
- `evaluation.external.score_external_predictions(cfg)`: `run/score_predictions.py`.
- `evaluation.demo.run_demo_inference(cfg)`: `run/demos/inference.py`.
- `evaluation.vision_probe.run_vision_probe(cfg)`: `run/vision_probe.py` (linear probes of image features).
- `evaluation.tasks.build_tasks(group, spec)`, `evaluation.parser.parse_answer(text, task)`.
- `evaluation.statistics`: accuracy, macro-F1, per-class scores, the reference micro-F1, the
  patient-clustered bootstrap, McNemar (exact when discordant pairs are few) and Holm.
- `evaluation.likelihood.score_options(model, processor, images, question, options)`.
- `evaluation.vision_models.build_answerer(entry_cfg, paths_cfg, generation_cfg)`: a registry
  model (local Hugging Face directory or OpenAI-compatible vision endpoint) behind `VisionAnswerer`.
"""
