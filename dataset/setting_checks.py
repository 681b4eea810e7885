"""Checking one numeric setting, so a bad value stops an entry script with one line naming the key
(`dataset.phantom.num_images must be >= 1, got 0`) instead of failing deep in NumPy or torch."""

from __future__ import annotations

from typing import Any

from dataset.errors import ConfigError


def check_number(value: Any, key: str, integer: bool = False, low: float | None = None,
                 high: float | None = None) -> float:
    """The setting `key` as a number within its bounds.

    Args:
        value: the configured value.
        key: its dotted config key, for the message.
        integer: require a whole number.
        low, high: inclusive bounds (None: unbounded).

    Returns:
        The number (an int when `integer`).

    Raises:
        ConfigError: not a (whole) number, or out of bounds; the message names the key.
    """
    try:
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{key} must be {kind}, got {value!r}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{key} must be {bounds}, got {value!r}")
    return number
