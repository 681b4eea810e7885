"""Training data: weighted epoch plans, resumable sharded batches, answer-only labels."""

import numpy as np
import pytest
from PIL import Image

from support.tiny_models import build_tiny_vlm
from models import ImageTokenMismatchError
from models.tokenizer import END_OF_TURN
from models.training.collate import IGNORE_INDEX, QACollator, filter_examples
from models.training.data import EpochPlan, PlannedBatchSampler, TrainingExample, stage_weights
from dataset.qa_records import QARecord


def _image():
    return Image.fromarray(np.full((192, 192), 128, dtype=np.uint8), mode="L").convert("RGB")


@pytest.fixture(scope="module")
def processor():
    return build_tiny_vlm()[1]


def test_epoch_plan_draws_weight_times_size_per_store():
    plan = EpochPlan(sizes=[10, 4], weights=[0.5, 2.0], seed=0)
    order = plan.order(0)
    assert len(order) == plan.epoch_length == 5 + 8
    assert (order < 10).sum() == 5 and (order >= 10).sum() == 8
    assert np.array_equal(plan.order(3), EpochPlan([10, 4], [0.5, 2.0], seed=0).order(3))
    assert not np.array_equal(plan.order(0), plan.order(1))


def _examples(image_ids):
    return [TrainingExample(QARecord(record_id=i, image_id=i, module="m", question="q?", answer="a.", source="rules",
                                     model="rules-v1", prompt_version="v1"), f"{i}.png") for i in image_ids]


def test_stage_balance_draws_every_stage_equally_often_and_keeps_each_stores_draws():
    # Store 0: 80 scans of stage a, 20 of stage b; store 1: 10 scans, all stage a.
    ids = [f"s{k}" for k in range(110)]
    stage_of = {i: ("a" if k < 80 or k >= 100 else "b") for k, i in enumerate(ids)}
    examples, sizes = _examples(ids), [100, 10]
    assert stage_weights(examples, sizes, stage_of, 0.0) == [1.0] * 110
    weights = stage_weights(examples, sizes, stage_of, 1.0)
    assert np.isclose(sum(weights[:100]), 100) and weights[100:] == [1.0] * 10  # one stage: untouched
    assert np.isclose(weights[80] / weights[0], 4.0)  # b is 4x rarer
    plan = EpochPlan([100, 10], [2.0, 1.0], seed=0, record_weights=weights)
    order = plan.order(0)
    assert len(order) == plan.epoch_length == 210
    drawn_b = sum(1 for i in order if 80 <= i < 100)
    assert 80 <= drawn_b <= 120  # about half of store 0's 200 draws (plain: 40)
    assert np.array_equal(order, EpochPlan([100, 10], [2.0, 1.0], seed=0, record_weights=weights).order(0))
    unbalanced = EpochPlan([100, 10], [2.0, 1.0], seed=0, record_weights=[1.0] * 110)
    assert np.array_equal(unbalanced.order(0), EpochPlan([100, 10], [2.0, 1.0], seed=0).order(0))


def test_sampler_started_mid_stream_continues_the_same_batches():
    plan = EpochPlan(sizes=[7, 5], weights=[1.0, 1.0], seed=1)
    full = PlannedBatchSampler(plan, batch_size=3)
    stream = iter(full)
    first = [next(stream) for _ in range(9)]  # crosses epoch boundaries (4 batches per epoch)
    resumed = iter(PlannedBatchSampler(plan, batch_size=3, start=5))
    assert [next(resumed) for _ in range(4)] == first[5:]


def test_processes_take_disjoint_slices_of_each_global_batch():
    plan = EpochPlan(sizes=[16], weights=[1.0], seed=2)
    shards = [next(iter(PlannedBatchSampler(plan, 4, num_processes=2, process_index=k))) for k in (0, 1)]
    ids = [i for shard in shards for i, _ in shard]
    assert len(set(ids)) == 8


def test_labels_mask_everything_but_answer_and_end_of_turn(processor):
    collator = QACollator(processor, max_length=200)
    batch = collator([{"image": _image(), "question": "Are there drusen?", "answer": "Yes, large drusen."},
                      {"image": _image(), "question": "Stage?", "answer": "Early AMD."}])
    tokenizer = processor.tokenizer
    for row, answer in enumerate(["Yes, large drusen.", "Early AMD."]):
        labels = batch["labels"][row]
        learnt = labels[labels != IGNORE_INDEX].tolist()
        assert tokenizer.decode(learnt) == answer + END_OF_TURN
        # learnt tokens are exactly the input tokens at those positions, and all come last (before padding)
        positions = (labels != IGNORE_INDEX).nonzero().flatten()
        assert batch["input_ids"][row, positions].tolist() == learnt
        assert positions.tolist() == list(range(positions[0].item(), positions[-1].item() + 1))
        assert batch["attention_mask"][row, positions[-1] + 1:].sum() == 0
    image_id = tokenizer.convert_tokens_to_ids(processor.image_token)
    assert ((batch["input_ids"] == image_id).sum(dim=1) == 36).all()


def test_collator_matches_the_processor_expansion(processor):
    from models import format_prompt

    collator = QACollator(processor)
    expected = processor(images=[_image()], text=[format_prompt(processor, "Stage?")], return_tensors="pt",
                         add_special_tokens=False)["input_ids"][0].tolist()
    assert collator.prompt_ids("Stage?") == expected


def test_long_answers_are_cut_but_prompts_and_image_tokens_kept(processor):
    collator = QACollator(processor, max_length=70)
    prompt = collator.prompt_ids("Describe the scan.")
    ids, labels = collator.encode("Describe the scan.", "word " * 200)
    assert len(ids) == 70 and ids[:len(prompt)] == prompt
    assert collator.truncated_answers == 1
    assert labels[len(prompt):] == ids[len(prompt):]


def test_prompts_too_long_for_max_length_are_dropped_and_counted(processor, caplog):
    collator = QACollator(processor, max_length=80)
    record = lambda q: TrainingExample(QARecord("r" + q[:3], "img", "m", q, "a", "rules", "rules", "v1"), "x.png")
    kept = filter_examples([record("Stage?"), record("Describe " * 40)], collator)
    assert [e.record.question for e in kept] == ["Stage?"]
    assert "dropped 1 of 2" in caplog.text


def test_a_question_holding_an_image_placeholder_raises(processor):
    collator = QACollator(processor)
    with pytest.raises(ImageTokenMismatchError, match="2 image placeholders"):
        collator([{"image": _image(), "question": "What is <image> here?", "answer": "x"}])


def test_length_grouping_keeps_each_epoch_a_permutation_and_batches_homogeneous():
    lengths = [10] * 30 + [300] * 2
    plain = EpochPlan(sizes=[32], weights=[1.0], seed=4)
    grouped = EpochPlan(sizes=[32], weights=[1.0], seed=4, lengths=lengths, batch_size=4, group_batches=8)
    order = grouped.order(0)
    assert sorted(order.tolist()) == sorted(plain.order(0).tolist())
    batches = order.reshape(-1, 4)
    long_batches = [b for b in batches if any(lengths[i] == 300 for i in b)]
    assert len(long_batches) == 1  # the two long examples share one batch
    assert np.array_equal(order, grouped.order(0))
