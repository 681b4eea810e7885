"""A CSV metrics tracker for accelerate, beside its TensorBoard (and optional W&B) trackers."""

from __future__ import annotations

import csv
from pathlib import Path

from accelerate.tracking import GeneralTracker


class CSVTracker(GeneralTracker):
    """Appends one row per `log` call to `<logging_dir>/metrics.csv` (columns: step, name, value).

    Long format, so metrics logged at different steps (train loss, eval loss) share one file and
    a resumed run appends to it.
    """

    name = "csv"
    requires_logging_directory = True

    def __init__(self, logging_dir: str | Path):
        super().__init__()
        self.path = Path(logging_dir) / "metrics.csv"

    @property
    def tracker(self):
        return self.path

    def start(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.is_file():
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(["step", "name", "value"])

    def store_init_configuration(self, values: dict):
        pass  # the run folder's resolved_config.yaml holds the configuration

    def log(self, values: dict, step: int | None = None, **kwargs):
        if not self.path.is_file():
            self.start()
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in values.items():
                writer.writerow([step, name, value])


def build_trackers(log_with, logging_dir: str | Path) -> list:
    """accelerate `log_with` entries: "csv" becomes a CSVTracker, others pass through (tensorboard, wandb)."""
    return [CSVTracker(logging_dir) if name == "csv" else name for name in log_with]
