"""KS statistic and Wasserstein distance, checked against scipy (a dev dependency)."""

from __future__ import annotations

import numpy as np
import pytest

from hemosynth.stats.compare import curve_distance, distances, ks_statistic, wasserstein

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, 300)
    b = rng.normal(0.3, 1.4, 170)
    b[:20] = np.round(b[:20])  # ties
    assert ks_statistic(a, b) == pytest.approx(scipy_stats.ks_2samp(a, b).statistic)
    assert wasserstein(a, b) == pytest.approx(scipy_stats.wasserstein_distance(a, b))


def test_known_values_and_edge_cases():
    assert wasserstein([0.0], [5.0]) == pytest.approx(5.0)
    assert ks_statistic([1, 2], [1, 2]) == 0.0
    assert np.isnan(ks_statistic([], [1.0]))
    assert ks_statistic([1, np.inf, np.nan], [1]) == 0.0  # non-finite values ignored
    assert curve_distance([0, 1, np.nan], [0, 3, 1]) == pytest.approx(2.0)
    d = distances(np.arange(10.0), np.arange(10.0) + 1)
    assert d["wasserstein"] == pytest.approx(1.0) and d["n_real"] == 10
