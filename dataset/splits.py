"""Which rows of an annotation table a run works on: the wanted splits, then at most N rows.

Curriculum generation, evaluation and saliency all choose their images here, so a split means the
same rows everywhere and a limit is applied the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dataset.annotation_csv import AnnotationError

SPLITS = ("train", "validation", "test")


def select_rows(table: pd.DataFrame, splits: str | Sequence[str] | None, max_images: int | None = None,
                seed: int | None = None, setting: str | None = None) -> pd.DataFrame:
    """The rows of the wanted splits, in table order, limited to `max_images`.

    Args:
        table: a loaded annotation table (`dataset.annotations.load_annotations`).
        splits: one split, several, or None (or empty) for every row.
        max_images: keep at most this many rows (None: all): the first ones, or with `seed` a
            seeded random subset (kept in table order).
        seed: draws the subset; None keeps the first rows.
        setting: the config key that chose `splits`, named in errors with how to use every row.

    Returns:
        The selected rows with a fresh 0-based index.

    Raises:
        AnnotationError: splits are wanted but the table has no `split` column, a split name is
            unknown, or the wanted splits have no rows.
    """
    wanted = [splits] if isinstance(splits, str) else list(splits or [])
    rows = table
    if wanted:
        every_row = f", or set {setting}=null to use every image" if setting else ""
        if "split" not in table.columns:
            raise AnnotationError("the annotation table has no 'split' column, so the train/validation images "
                                  f"cannot be told from test images; add one (train/validation/test){every_row}")
        unknown = [s for s in wanted if s not in SPLITS]
        if unknown:
            raise AnnotationError(f"unknown split(s) {unknown}; known: {list(SPLITS)}")
        rows = table[table["split"].isin(wanted)]
        if rows.empty:
            raise AnnotationError(f"the annotation table has no rows in split(s) {wanted}"
                                  + (f"; choose others with {setting}" if setting else ""))
    rows = rows.reset_index(drop=True)
    if max_images is not None and len(rows) > int(max_images):
        rows = rows.head(int(max_images)) if seed is None else \
            rows.sample(n=int(max_images), random_state=seed).sort_index().reset_index(drop=True)
    return rows
