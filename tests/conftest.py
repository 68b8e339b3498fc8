"""Shared fixtures.

Tests that need the real reference data in ``../shared/data`` take the ``shared_data`` fixture
(and carry the ``shared_data`` marker); they skip with a reason when it is absent. The folder is
found from ``HEMOSYNTH_SHARED_DATA`` or beside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("HEMOSYNTH_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("../shared/data is absent (set HEMOSYNTH_SHARED_DATA to run this test)")
    return d


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)
