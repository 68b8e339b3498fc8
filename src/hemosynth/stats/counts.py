"""Count statistics: instances per class for the label sets, balance, per-smear counts.

The paper's figure 5 (subtype balance) is :func:`label_set_instances` with :func:`balance`;
its figure 4 (per-field counts against the configured Gaussians) is :func:`count_histogram`
with :func:`configured_pmf`.
"""

from __future__ import annotations

from math import erf, sqrt

import numpy as np

from ..taxonomy import LABEL_SETS, MAIN_TYPES, POOL_CLASSES, RBC

#: the per-smear count groups of the config: name -> (config key, pool classes)
COUNT_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "RBC": ("rbc", (RBC,)),
    "WBC + Nucleated RBC": ("wbc", (*MAIN_TYPES["WBC"], "Nucleated RBC")),
    "Platelet": ("platelet", MAIN_TYPES["Platelet"]),
}


def label_set_instances(pool_counts: np.ndarray) -> dict[str, dict[str, int]]:
    """Instances per class of every label set.

    Parameters
    ----------
    pool_counts : ndarray of shape (18,)
        Labelled cells per pool class, in :data:`~hemosynth.taxonomy.POOL_CLASSES` order.

    Returns
    -------
    dict
        Label set name -> {class name: instances}, classes in id order.

    Examples
    --------
    >>> c = np.zeros(18, int); c[0] = 5; c[1] = 2
    >>> label_set_instances(c)["main+rbc"]
    {'RBC': 5, 'WBC': 2, 'Platelet': 0, 'Nucleated RBC': 0}
    """
    out: dict[str, dict[str, int]] = {}
    for name, ls in LABEL_SETS.items():
        d = dict.fromkeys(ls.names, 0)
        for c, n in zip(POOL_CLASSES, np.asarray(pool_counts).tolist(), strict=True):
            cid = ls.class_id(c)
            if cid is not None:
                d[ls.names[cid]] += int(n)
        out[name] = d
    return out


def balance(sub_counts: dict[str, int]) -> dict[str, float | None]:
    """Max/min instances over the subtypes of each main type with several subtypes.

    Returns
    -------
    dict
        Main type -> max/min (None when a subtype has no instance: the ratio is infinite).

    Examples
    --------
    >>> balance({"Platelet": 10, "Giant platelet": 5, "Activated platelet": 8})["Platelet"]
    2.0
    """
    out: dict[str, float | None] = {}
    for main, subs in MAIN_TYPES.items():
        if len(subs) < 2:
            continue
        v = [sub_counts.get(s, 0) for s in subs]
        out[main] = None if min(v) == 0 else round(max(v) / min(v), 4)
    return out


def _phi(x: np.ndarray) -> np.ndarray:
    return np.array([0.5 * (1 + erf(float(v) / sqrt(2))) for v in np.ravel(x)]).reshape(
        np.shape(x)
    )


def configured_pmf(mean: float, sd: float, kmax: int, rule: str = "clip") -> np.ndarray:
    """Distribution of a count drawn as ``round(N(mean, sd))`` with the negative-draw rule.

    Parameters
    ----------
    mean, sd : float
        The Gaussian already scaled to the field (see :func:`hemosynth.smear.counts.draw_count`).
    kmax : int
        Largest count tabulated.
    rule : {"clip", "resample"}
        ``clip`` puts the negative mass at 0; ``resample`` renormalises over counts >= 0.

    Returns
    -------
    ndarray of shape (kmax + 1,)
        ``P(X = k)`` for ``k = 0 .. kmax``.

    Examples
    --------
    >>> configured_pmf(0.0, 0.0, 2)
    array([1., 0., 0.])
    """
    k = np.arange(kmax + 1)
    if sd <= 0:
        p = (k == int(round(mean))).astype(float)
        if mean < 0:
            p[0] = 1.0
        return p
    upper = _phi((k + 0.5 - mean) / sd)
    lower = _phi((k - 0.5 - mean) / sd)
    p = upper - lower
    if rule == "clip":
        p[0] = upper[0]
    else:
        below = _phi(np.array([(-0.5 - mean) / sd]))[0]
        p = p / max(1.0 - below, 1e-300)
    return p


def count_histogram(values: np.ndarray, kmax: int | None = None) -> list[int]:
    """Histogram of non-negative integer counts, as a list (index = count)."""
    v = np.asarray(values, np.int64)
    n = int(v.max()) + 1 if v.size else 1
    if kmax is not None:
        n = max(n, kmax + 1)
    return np.bincount(v, minlength=n).tolist()


def discrete_ks(values: np.ndarray, pmf: np.ndarray) -> float:
    """KS statistic between integer samples and a distribution on ``0 .. len(pmf) - 1``."""
    v = np.asarray(values, np.int64)
    if v.size == 0:
        return float("nan")
    kmax = max(len(pmf) - 1, int(v.max()))
    p = np.zeros(kmax + 1)
    p[: len(pmf)] = pmf
    ecdf = np.cumsum(np.bincount(v, minlength=kmax + 1)) / v.size
    return float(np.max(np.abs(ecdf - np.cumsum(p))))


def group_of_pool(c: str) -> str:
    """The :data:`COUNT_GROUPS` name a pool class counts in."""
    for g, (_, classes) in COUNT_GROUPS.items():
        if c in classes:
            return g
    raise KeyError(c)


__all__ = [
    "COUNT_GROUPS",
    "balance",
    "configured_pmf",
    "count_histogram",
    "discrete_ks",
    "group_of_pool",
    "label_set_instances",
]
