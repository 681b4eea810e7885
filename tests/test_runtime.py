"""Run folders record their resolved config with secrets redacted."""

from omegaconf import OmegaConf

from dataset.runtime import REDACTED, prepare_run


def test_prepare_run_writes_redacted_config(tmp_path):
    canary = "sk-canary-123456"
    cfg = OmegaConf.create({"run_dir": str(tmp_path / "run"), "seed": 3,
                            "paths": {"openai_api_key": canary, "openai_api_key_file": "/keys/k"},
                            "model": {"hf_token": canary, "max_tokens": 12, "tokenizer": "bpe"}})
    run_dir = prepare_run(cfg)
    text = (run_dir / "resolved_config.yaml").read_text()
    assert canary not in text
    saved = OmegaConf.load(run_dir / "resolved_config.yaml")
    assert saved.paths.openai_api_key == REDACTED and saved.model.hf_token == REDACTED
    assert saved.paths.openai_api_key_file == "/keys/k" and saved.model.max_tokens == 12
