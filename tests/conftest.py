"""Shared test helpers: paths to the shared fixtures and the bundled recording."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "polymarket"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures/polymarket is not beside the checkout")
    return FIXTURES
