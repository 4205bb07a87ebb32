"""Argument checks shared by the schedules, the plateau and the config layer.

Every refusal is a :class:`ConfigValueError` that names the key, the value and what is allowed, e.g.
``"`gamma` must be in (0, 1], got 1.5"``; the config layer re-raises it with the full key
(``schedule.gamma``) so a Hydra user knows which override to fix.
"""

from __future__ import annotations

import math
import os
from typing import Any


class ConfigValueError(ValueError):
    """A configuration value outside its allowed range.

    Args:
        key: The offending key, e.g. ``"gamma"``.
        value: The value that was given.
        allowed: What is allowed, phrased to follow "must be", e.g. ``"in (0, 1]"``.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"`{self.key}` must be {self.allowed}, got {self.value!r}"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.key, self.value, self.allowed)

    def under(self, prefix: str) -> ConfigValueError:
        """The same error with its key qualified by ``prefix`` (``gamma`` -> ``schedule.gamma``)."""
        return type(self)(f"{prefix}.{self.key}", self.value, self.allowed)


class UnknownKeyError(ConfigValueError):
    """A key that the option does not have (e.g. force-added with ``+schedule.gama=0.3``).

    ``allowed`` lists the option's keys.
    """

    def describe(self) -> str:
        return f"Unknown key `{self.key}` (set to {self.value!r}); the keys here are: {self.allowed}"


def check_int(key: str, value: Any, low: int) -> None:
    """Requires an ``int`` (not a ``bool``) that is at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigValueError(key, value, f"an int >= {low}")


def check_float(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Requires a finite real number within ``[low, high]`` (ends excluded where ``*_open``).

    Raises:
        ConfigValueError: On a non-number, NaN, an infinity, or a value out of range; the message gives the
            interval in the usual notation, e.g. ``in (0, 1]`` or ``>= 0``.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    if low is not None and high is not None:
        allowed = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        allowed = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        allowed = "a finite number"
    raise ConfigValueError(key, value, allowed)


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """Requires one of ``choices``."""
    if value not in choices:
        raise ConfigValueError(key, value, f"one of {', '.join(choices)}")


# The user's own HYDRA_FULL_ERROR, kept for the processes a run starts (lrsched_pl.app sets Hydra's to 1 itself).
USER_FULL_ERROR = "LRSCHED_PL_FULL_ERROR"


def full_error() -> bool:
    """Whether the user asked for tracebacks with ``HYDRA_FULL_ERROR=1`` (as set before ``lrsched-train`` started,
    which then sets it for Hydra itself and keeps the user's choice in ``LRSCHED_PL_FULL_ERROR``)."""
    return os.environ.get(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR", "")) == "1"
