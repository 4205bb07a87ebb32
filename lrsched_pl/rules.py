"""Small value rules for the up-front config checks: each is ``rule(key, value)`` and raises ``ConfigValueError``.

A rule carries the phrase that follows "must be" in its error, so a refusal reads like every other one in the
project: ``"`trainer.max_epochs` must be an int >= -1 or null, got 'abc'"``. The rule tables are in
:mod:`lrsched_pl.argspecs`; :mod:`lrsched_pl.checks` applies them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrsched_pl.errors import ConfigValueError


@dataclass(frozen=True)
class Rule:
    """A test on one value and the phrase naming what passes it (``"an int >= 1"``)."""

    test: Callable[[Any], bool]
    allowed: str

    def __call__(self, key: str, value: Any) -> None:
        if not self.test(value):
            raise ConfigValueError(key, value, self.allowed)

    def __or__(self, other: Rule) -> Rule:
        return Rule(lambda v: self.test(v) or other.test(v), f"{self.allowed} or {other.allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An int (not a bool) within ``[low, high]``."""
    bounds = [f">= {low}"] if low is not None else []
    bounds += [f"<= {high}"] if high is not None else []
    return Rule(
        lambda v: _is_int(v) and (low is None or v >= low) and (high is None or v <= high),
        "an int" + (" " + " and ".join(bounds) if bounds else ""),
    )


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False) -> Rule:
    """A finite real number (int or float, not a bool) within the interval, ends excluded where ``*_open``."""

    def test(v: Any) -> bool:
        if not _is_number(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or (v < high if high_open else v <= high)

    if low is not None and high is not None:
        allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        allowed = "a finite number"
    return Rule(test, allowed)


def choice(*values: Any) -> Rule:
    """One of ``values`` (compared with ``==`` and of the same type, so ``True`` is not ``1``)."""
    return Rule(
        lambda v: any(v == c and type(v) is type(c) for c in values),
        "one of " + ", ".join(str(c) for c in values),
    )


BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
NULL = Rule(lambda v: v is None, "null")
STRING = Rule(lambda v: isinstance(v, str), "a string")
NAME = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
ANY = Rule(lambda v: True, "anything")
NODE = Rule(lambda v: isinstance(v, dict) and "_target_" in v, "a node with a `_target_`")
INT_LIST = Rule(lambda v: isinstance(v, list) and all(_is_int(x) and x >= 0 for x in v), "a list of ints >= 0")


def optional(rule: Rule) -> Rule:
    """``rule``, or null."""
    return rule | NULL


def pair(rule: Rule) -> Rule:
    """A list of two values, each passing ``rule`` (Adam's ``betas``)."""
    return Rule(
        lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(rule.test(x) for x in v),
        f"a list of two values, each {rule.allowed}",
    )


def list_of(rule: Rule) -> Rule:
    return Rule(lambda v: isinstance(v, (list, tuple)) and all(rule.test(x) for x in v), f"a list of {rule.allowed}")
