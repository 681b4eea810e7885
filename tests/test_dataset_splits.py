"""Choosing rows by split: the same rows and order for curriculum, evaluation and saliency."""

import pandas as pd
import pytest

from dataset.annotations import AnnotationError
from dataset.splits import select_rows


@pytest.fixture
def table():
    splits = ["train", "test", "validation", "train", "test", "train", "test", "train"]
    return pd.DataFrame({"image_id": [f"img{i}" for i in range(len(splits))], "split": splits})


def test_splits_keep_table_order_and_a_limit_keeps_the_first_rows(table):
    assert list(select_rows(table, None)["image_id"]) == list(table["image_id"])
    assert list(select_rows(table, ["train", "validation"])["image_id"]) == ["img0", "img2", "img3", "img5", "img7"]
    assert list(select_rows(table, "test", 2)["image_id"]) == ["img1", "img4"]
    assert select_rows(table, "train", 0).empty
    assert list(select_rows(table, "train", 3).index) == [0, 1, 2]


def test_a_seed_draws_a_reproducible_subset_in_table_order(table):
    draws = {tuple(select_rows(table, "train", 2, seed=seed)["image_id"]) for seed in range(20)}
    assert len(draws) > 1  # the seed matters
    for draw in draws:
        assert list(draw) == sorted(draw) and set(draw) <= {"img0", "img3", "img5", "img7"}
    assert select_rows(table, "train", 2, seed=4).equals(select_rows(table, "train", 2, seed=4))
    assert len(select_rows(table, "train", 10, seed=4)) == 4  # a limit above the split size keeps it all


@pytest.mark.parametrize("splits,table_edit,message", [
    ("test", lambda t: t.drop(columns=["split"]), r"no 'split' column.*dataset\.task\.split=null"),
    (["train", "tset"], lambda t: t, r"unknown split\(s\) \['tset'\]"),
    ("validation", lambda t: t[t["split"] != "validation"], r"no rows in split\(s\) \['validation'\]"),
])
def test_bad_selections_fail_with_the_fix(table, splits, table_edit, message):
    with pytest.raises(AnnotationError, match=message):
        select_rows(table_edit(table), splits, setting="dataset.task.split")
