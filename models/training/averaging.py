"""Weight averaging over the tail of training (stochastic weight averaging, Izmailov et al. 2018).

The saved model is the running mean of the trainable weights after each optimiser step in the last
`fraction` of the run, instead of the last step's weights alone. The mean is kept in float32 beside
the model and checkpointed with it (`accelerator.register_for_checkpointing`), so a resumed run
averages exactly the steps an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TailAverage:
    """Running mean of a model's trainable parameters over the optimiser steps after `start_step`."""

    def __init__(self, model: nn.Module, max_steps: int, fraction: float):
        """Average the last `fraction` (0 < fraction <= 1) of `max_steps` optimiser steps."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"training.average_last must lie in (0, 1] to average weights, got {fraction}")
        self.start_step = max_steps - max(1, math.ceil(fraction * max_steps))
        self.count = 0
        self._params = [p for p in model.parameters() if p.requires_grad]
        self._mean = [p.detach().float().clone() for p in self._params]

    def update(self, step: int) -> None:
        """Fold in the weights after optimiser step `step` (1-based) if it lies in the averaged tail."""
        if step <= self.start_step:
            return
        self.count += 1
        with torch.no_grad():
            for mean, param in zip(self._mean, self._params, strict=True):
                mean.add_(param.detach().float() - mean, alpha=1.0 / self.count)

    def copy_to_model(self) -> None:
        """Write the mean into the model's parameters (in their own dtype)."""
        if self.count == 0:
            raise RuntimeError("no step has been averaged yet")
        with torch.no_grad():
            for mean, param in zip(self._mean, self._params, strict=True):
                param.copy_(mean.to(param.dtype))

    def state_dict(self) -> dict:
        return {"start_step": self.start_step, "count": self.count, "mean": [m.cpu() for m in self._mean]}

    def load_state_dict(self, state: dict) -> None:
        if int(state["start_step"]) != self.start_step or len(state["mean"]) != len(self._mean):
            raise ValueError("the checkpoint's weight average belongs to another configuration")
        self.count = int(state["count"])
        for mean, saved in zip(self._mean, state["mean"], strict=True):
            mean.copy_(saved.to(mean.device))
