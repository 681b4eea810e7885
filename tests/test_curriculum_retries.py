"""Curriculum generation against a local server: responses that keep no record are asked again
on a rerun (up to `generation.max_attempts`), and a run that adds nothing says what the store holds."""

import logging

from support.configs import compose_config
from support.openai_server import ScriptedServer, completion
from support.tables import write_curriculum_table

from curriculum.api import generate_curriculum

GOOD = completion("Q1: Can you see the retinal layers?\nA1: Yes, they are visible.\n"
                  "Q2: Is the image sharp?\nA2: Mostly.")
BAD = completion("Sorry, I can only chat about the weather.")


def _run(tmp_path, server, *overrides, backend="openai_compatible"):
    table = write_curriculum_table(tmp_path / "data")
    served = [f"model.language_model.base_url={server.base_url}", "model.language_model.model=test-model",
              "model.language_model.max_retries=0", "model.language_model.timeout_s=20"] if server else []
    cfg = compose_config("generate_curriculum_part2", tmp_path, [
        f"generation.annotations_file={table}", "generation.max_images=2", f"model/language_model={backend}",
        *served, *overrides])
    return generate_curriculum(cfg)


def test_unparseable_answers_are_asked_again_on_a_rerun(tmp_path, caplog):
    with ScriptedServer(lambda n, body: (200, {}, BAD if n < 2 else GOOD)) as server:
        first = _run(tmp_path, server)
        assert first["records_written"] == 0 and first["counts"]["responses_without_records"] == 2
        second = _run(tmp_path, server)
        assert second["counts"]["retried_empty"] == 2 and second["records_written"] == 4
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            third = _run(tmp_path, server)
        assert third["counts"]["already_done"] == 2 and third["records_written"] == 0
        assert third["counts"].get("requests", 0) == 0
    text = caplog.text
    assert "nothing to ask" in text and "4 by openai_compatible/test-model" in text
    assert "set paths.curriculum_dir to a new folder" in text


def test_retries_stop_at_max_attempts(tmp_path):
    asked = []

    def script(number, body):
        asked.append(number)
        return 200, {}, BAD

    with ScriptedServer(script) as server:
        for _ in range(2):
            _run(tmp_path, server, "generation.max_attempts=2")
        assert len(asked) == 4
        last = _run(tmp_path, server, "generation.max_attempts=2")
    assert len(asked) == 4, "given up after two empty responses per image"
    assert last["counts"]["given_up_empty"] == 2 and last["counts"].get("requests", 0) == 0


def test_another_backends_records_are_named(tmp_path, caplog):
    rules = _run(tmp_path, None, backend="rules")
    assert rules["records_written"] > 0
    with ScriptedServer(lambda n, body: (200, {}, GOOD)) as server, caplog.at_level(logging.WARNING):
        served = _run(tmp_path, server)
    assert served["records_written"] == 4
    assert "also holds records of rules/rules" in caplog.text
