"""What the tests share, one module per kind of thing (tests/ is on the path, so `from support.x import y`).

- `configs`: composing the project's Hydra configs with every output under a test's folder.
- `tiny_models`: tiny VLMs (in memory, saved, or as training overrides) and a tiny chat LLM.
- `scans`: small deterministic scans, with or without a lesion and its mask.
- `tables`: annotation tables over such scans, for each area's tests.
- `training`: tiny curriculum stores, training overrides and the trained model pair of the web demo.
- `openai_server`: a local OpenAI-compatible endpoint whose answers a test scripts.
- `retinavlm_reference`: a synthetic RetinaVLM release and its reference forward pass.
"""
