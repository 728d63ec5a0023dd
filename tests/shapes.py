"""Comparing an answer's shape with a captured sample's: the same keys, the same JSON types, decimal
strings where the sample has one. The tests of the simulator's REST answers and frames use it."""

from __future__ import annotations

import re
from typing import Any

DECIMAL = re.compile(r"-?\d+(\.\d+)?$")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def shape_errors(answer: Any, like: Any, path: str = "$", *, extra: frozenset[str] = frozenset()) -> list[str]:
    """How ``answer`` differs from the sample ``like``: keys (key for key; names in ``extra`` may
    be added), JSON types (null matches anything; ints and floats are both numbers), decimal
    strings (or "", the venue's no value) where the sample has one; list items each against the
    sample's first item."""
    if like is None or answer is None:
        return []
    if _kind(answer) != _kind(like):
        return [f"{path}: {_kind(answer)} {answer!r:.60}, the sample has {_kind(like)} {like!r:.60}"]
    errors = []
    if isinstance(like, dict):
        if missing := sorted(set(like) - set(answer)):
            errors.append(f"{path}: missing {missing}")
        if unexpected := sorted(set(answer) - set(like) - extra):
            errors.append(f"{path}: not in the sample {unexpected}")
        for key in sorted(set(like) & set(answer)):
            errors += shape_errors(answer[key], like[key], f"{path}.{key}", extra=extra)
    elif isinstance(like, list) and like:
        for i, item in enumerate(answer):
            errors += shape_errors(item, like[0], f"{path}[{i}]", extra=extra)
    elif isinstance(like, str) and DECIMAL.match(like) and answer != "" and not DECIMAL.match(answer):
        # "" stands for no value where the venue has none (protocol doc §10: last_trade_price "")
        errors.append(f"{path}: {answer!r:.60} is not a decimal string like the sample's {like!r}")
    return errors


def assert_shape(answer: Any, like: Any, *, extra: frozenset[str] = frozenset()) -> None:
    errors = shape_errors(answer, like, extra=extra)
    assert not errors, "\n".join(errors)
