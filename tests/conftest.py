"""Shared test helpers.

tests/fixtures/polymarket/ is a byte-for-byte copy of ../shared/fixtures/polymarket/ (real
captured venue frames and REST bodies; provenance in its README), kept in the repository so
the wire tests run on any clone. The large Gamma JSONL sample was left out.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "polymarket"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
