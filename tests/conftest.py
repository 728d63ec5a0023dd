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


# Deterministic by default: the same examples on every run and machine (CI included). Set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples.
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
