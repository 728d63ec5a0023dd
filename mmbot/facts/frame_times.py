"""How long each recorded frame took to handle, in real time: what a replay's summary shows as its
processing speed (the log's own times are the recording's, virtual, so a decision there takes 0).

A frame's time runs from its delivery to the end of the decision step that followed it: decoding,
the books, the paper venue's look at it, the strategies, risk, the executor and the rows they
record. Times are kept in a fixed histogram (16 buckets per power of two, so a percentile is
within 1/16 of the truth), never one entry per frame: a replay of any length keeps the same few
kilobytes.
"""

from __future__ import annotations

from typing import Any

_SUB_BITS = 4
_SUB = 1 << _SUB_BITS  # buckets per power of two
_BUCKETS = _SUB + (64 - _SUB_BITS) * _SUB


def _index(ns: int) -> int:
    if ns < _SUB:
        return ns
    shift = ns.bit_length() - _SUB_BITS - 1
    return _SUB + shift * _SUB + ((ns >> shift) & (_SUB - 1))


def _upper(index: int) -> int:
    """The largest time that falls in bucket ``index``."""
    if index < _SUB:
        return index
    shift, mantissa = divmod(index - _SUB, _SUB)
    return ((_SUB + mantissa + 1) << shift) - 1


class FrameTimes:
    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0

    def add(self, ns: int) -> None:
        ns = max(ns, 0)
        self._counts[_index(ns)] += 1
        self.count += 1
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    def percentile_ns(self, per_mille: int) -> int:
        """The nearest-rank percentile (``per_mille`` of 1000), as its bucket's upper edge (never
        above the largest time seen); 0 when nothing was added."""
        if not self.count:
            return 0
        rank = max(1, -(-self.count * per_mille // 1000))
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return min(_upper(index), self.max_ns)
        return self.max_ns

    def summary(self) -> dict[str, Any]:
        """Count, p50/p99/p99.9 and max in whole µs, and the seconds spent in all."""
        return {
            "frames": self.count,
            "p50_us": self.percentile_ns(500) // 1000,
            "p99_us": self.percentile_ns(990) // 1000,
            "p999_us": self.percentile_ns(999) // 1000,
            "max_us": self.max_ns // 1000,
            "busy_ms": self.total_ns // 1_000_000,
        }
