"""Distances between a generated and a real distribution (numpy only).

Two-sample Kolmogorov-Smirnov statistic and 1-Wasserstein (earth mover's) distance between
samples, and the sup-norm distance between two curves sampled on the same grid (for L(r)).
"""

from __future__ import annotations

import numpy as np


def _clean(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float).ravel()
    return np.sort(x[np.isfinite(x)])


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``sup |F_a - F_b|`` (NaN if a sample is empty).

    Non-finite values are ignored.

    Examples
    --------
    >>> ks_statistic([1, 2, 3], [1, 2, 3])
    0.0
    >>> ks_statistic([0, 0], [1, 1])
    1.0
    """
    a, b = _clean(a), _clean(b)
    if a.size == 0 or b.size == 0:
        return float("nan")
    x = np.concatenate((a, b))
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance ``integral |F_a - F_b| dx``, in the samples' units.

    Examples
    --------
    >>> wasserstein([0, 1], [2, 3])
    2.0
    """
    a, b = _clean(a), _clean(b)
    if a.size == 0 or b.size == 0:
        return float("nan")
    x = np.sort(np.concatenate((a, b)))
    dx = np.diff(x)
    fa = np.searchsorted(a, x[:-1], side="right") / a.size
    fb = np.searchsorted(b, x[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * dx))


def curve_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of two curves on the same grid (NaN where undefined)."""
    d = np.abs(np.asarray(a, float) - np.asarray(b, float))
    d = d[np.isfinite(d)]
    return float(d.max()) if d.size else float("nan")


def distances(a: np.ndarray, b: np.ndarray) -> dict[str, float | int]:
    """KS statistic, Wasserstein distance and sample sizes of ``a`` (generated) and ``b`` (real)."""
    return {
        "ks": ks_statistic(a, b),
        "wasserstein": wasserstein(a, b),
        "n_generated": int(np.isfinite(np.asarray(a, float)).sum()),
        "n_real": int(np.isfinite(np.asarray(b, float)).sum()),
    }


__all__ = ["curve_distance", "distances", "ks_statistic", "wasserstein"]
