"""Fixtures of the IATI tests: the demo organisation (loaded once per module) and IATI settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import IatiSettings
from tests.app.demo_world import loaded_demo  # noqa: F401  (a fixture, made available to the modules here)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "iati"
PUBLISHER = IatiSettings(org_ref="LC-CRO-98765", org_name="Windward Sex Worker Coalition", org_type="22", language="en")


@pytest.fixture
def iati_settings() -> IatiSettings:
    return PUBLISHER
