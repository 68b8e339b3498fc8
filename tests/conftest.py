"""Shared fixtures.

Tests that need the real reference data in ``../shared/data`` take the ``shared_data`` fixture
(and carry the ``shared_data`` marker); they skip with a reason when it is absent. The folder is
found from ``HEMOSYNTH_SHARED_DATA`` or beside the repository.

The kernels' ahead-of-time library is built before any test imports the kernels (once per key,
about 20 s; :mod:`hemosynth.smear.aot`), so that the suite runs them as users' processes do.
``HEMOSYNTH_AOT=0`` runs the suite on numba's JIT instead; the tests that need one or the other
set it for the processes they start.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _build_kernel_library() -> None:
    from hemosynth.smear import aot

    problem = aot.ensure_built()
    if problem is not None:
        print(f"conftest: the kernels' library could not be built ({problem}); numba's JIT "
              "runs them")


_build_kernel_library()


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
