"""Run folders record their resolved config with secrets redacted."""

from omegaconf import OmegaConf

from dataset.runtime import prepare_run
from dataset.secrets import REDACTED


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


def test_qa_store_survives_a_torn_line(tmp_path):
    from dataset.qa_records import QARecord, append_records, read_records

    def record(i):
        return QARecord(QARecord.make_id("img", "m", i), "img", "m", f"q{i}?", f"a{i}", "rules", "rules", "v1")

    store = tmp_path / "module"
    append_records(store, [record(0), record(1)])
    with (store / "records.jsonl").open("ab") as handle:
        handle.write(record(2).to_json()[:25].encode())  # killed mid-write
    assert [r.question for r in read_records(store)] == ["q0?", "q1?"]
    append_records(store, [record(2), record(1)])
    assert [r.question for r in read_records(store)] == ["q0?", "q1?", "q2?"]
