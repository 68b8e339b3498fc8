"""How many cells of each class a smear holds (Algorithm 1, lines 2-11).

Per smear:

1. Draw the per-field counts of RBCs, nucleated cells (WBCs and nucleated RBCs, see
   :class:`~hemosynth.config.CountsConfig`) and platelets from Gaussians, scaled by the field's
   area in square micrometres relative to the paper's reference field (mean and sd alike);
   negative draws are clipped or resampled.
2. For each group (nucleated cells: 13 WBC subtypes + Nucleated RBC; platelets: 3 subtypes),
   draw SubTypesCount = Rand(1, Max_types) and the shares: share_1 = Rand(Min, 1), then each
   next share Rand(Min, Max) with Max = 1 - (shares so far), the last taking the rest.
3. Choose *which* subtypes get the shares:

   ``paper``
       uniformly at random, as in Algorithm 1;
   ``balanced``
       the subtypes with the fewest instances so far in the dataset, the largest share to the
       one furthest behind (ties broken at random). "So far" is a *census* that replays the
       cheap count-and-share draws of smears ``0 .. i-1`` from their own seeds, never their
       images, so smear ``i`` is still reproducible alone from ``(seed, i)``, whatever the
       worker count, order or resume;
   ``weights``
       each instance's subtype drawn from the configured weights.

4. Split each group's count among its subtypes by the shares (largest remainder).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import REFERENCE_FIELD_PX, CountsConfig, Gaussian, GenerationConfig, SubtypeConfig
from ..errors import ConfigError
from ..taxonomy import MAIN_TYPES, RBC
from .seeds import STREAM_COUNTS, smear_rng

#: subtype groups that share one Gaussian count
GROUPS: dict[str, tuple[str, ...]] = {
    "nucleated": (*MAIN_TYPES["WBC"], "Nucleated RBC"),
    "platelet": MAIN_TYPES["Platelet"],
}


def area_factor(cfg: GenerationConfig) -> float:
    """Canvas area over the reference field's area, both in square micrometres."""
    if not cfg.counts.scale_with_area:
        return 1.0
    ref_w, ref_h = REFERENCE_FIELD_PX
    from ..config import DEFAULT_UM_PER_PX

    return cfg.canvas.area_um2 / (ref_w * ref_h * DEFAULT_UM_PER_PX**2)


def scaled_gaussian(g: Gaussian, factor: float) -> tuple[float, float]:
    """Mean and sd of a count Gaussian for a field ``factor`` times the reference area."""
    return g.mean * factor, g.sd * factor


def draw_count(rng: np.random.Generator, g: Gaussian, factor: float, cfg: CountsConfig) -> int:
    """One count from ``N(mean * factor, sd * factor)``, rounded stochastically, with the
    negative-draw rule.

    Mean and sd both scale with the area, so the coefficient of variation of the paper's
    Table 2 is kept: the spread between fields is mostly a spread of *density* (thick and thin
    parts of the slide), which a smaller field at the same place shares. (Scaling the sd by
    the square root of the area, as for independent sub-fields, would make a 640 x 480 field
    at BCCD's scale empty of red cells one time in five.)
    """
    mean, sd = scaled_gaussian(g, factor)
    for _ in range(1000):
        x = float(rng.normal(mean, sd)) if sd > 0 else mean
        # stochastic rounding keeps the mean of small counts (a mean of 0.14 platelets per
        # field must not round to none at all)
        n = int(np.floor(x))
        n += int(rng.random() < x - n)
        if n >= 0 or cfg.negative_rule == "clip":
            return min(max(n, 0), cfg.max_per_type)
    return 0


def draw_shares(rng: np.random.Generator, n_types: int, min_share: float) -> np.ndarray:
    """The paper's shares: each Rand(Min, Max) with Max decreasing from 1, the last the rest.

    Returns
    -------
    ndarray of shape (n_types,)
        Non-negative shares that sum to 1.
    """
    shares = np.empty(n_types)
    remaining = 1.0
    for j in range(n_types - 1):
        lo = min(min_share, remaining)
        s = rng.uniform(lo, remaining)
        shares[j] = s
        remaining -= s
    shares[-1] = remaining
    return shares


def allocate(n: int, shares: np.ndarray) -> np.ndarray:
    """Split ``n`` into integers proportional to ``shares`` (largest remainder, ties by order)."""
    raw = n * np.asarray(shares, float)
    out = np.floor(raw).astype(np.int64)
    rest = n - int(out.sum())
    if rest > 0:
        order = np.argsort(-(raw - out), kind="stable")
        out[order[:rest]] += 1
    return out


@dataclass(frozen=True)
class SmearCounts:
    """The cells one smear asks for.

    Attributes
    ----------
    per_class : dict
        Pool class -> number requested (only classes with a positive count).
    """

    per_class: dict[str, int]

    def total(self) -> int:
        return sum(self.per_class.values())


class Census:
    """Per-smear counts for a dataset, computed from (seed, index) with balanced steering.

    Parameters
    ----------
    cfg : GenerationConfig
    available : set of str, optional
        Classes the pool has; subtypes outside it (or in ``subtypes.exclude``) are never drawn.
    """

    def __init__(self, cfg: GenerationConfig, available: set[str] | None = None) -> None:
        self.cfg = cfg
        sub: SubtypeConfig = cfg.subtypes
        excluded = set(sub.exclude)
        self.groups: dict[str, tuple[str, ...]] = {}
        for g, classes in GROUPS.items():
            keep = tuple(
                c for c in classes
                if c not in excluded and (available is None or c in available)
            )
            self.groups[g] = keep
        if sub.mode == "weights":
            for g in self.groups:
                self.groups[g] = tuple(c for c in self.groups[g] if sub.weights.get(c, 0) > 0)
        self._factor = area_factor(cfg)
        self._totals = {g: np.zeros(len(c), np.int64) for g, c in self.groups.items()}
        self._cache: list[SmearCounts] = []
        self._given: dict[int, SmearCounts] = {}

    def group_count(self, rng: np.random.Generator, group: str) -> int:
        c = self.cfg.counts
        g = c.wbc if group == "nucleated" else c.platelet
        return draw_count(rng, g, self._factor, c)

    def _draw(self, index: int) -> SmearCounts:
        cfg = self.cfg
        rng = smear_rng(cfg.seed, index, STREAM_COUNTS)
        per: dict[str, int] = {}
        n_rbc = draw_count(rng, cfg.counts.rbc, self._factor, cfg.counts)
        if n_rbc:
            per[RBC] = n_rbc
        for group, classes in self.groups.items():
            n = self.group_count(rng, group)
            k = len(classes)
            # draws happen in a fixed order whatever the mode, so modes share counts
            max_types = k if cfg.subtypes.max_types is None else min(cfg.subtypes.max_types, k)
            m = int(rng.integers(1, max_types + 1)) if k else 0
            shares = draw_shares(rng, m, cfg.subtypes.min_share) if m else np.empty(0)
            tiebreak = rng.random(k)
            if n == 0:
                continue
            if k == 0:
                raise ConfigError(
                    f"subtypes: every {group} subtype is excluded or missing from the pool, "
                    f"but the counts ask for {group} cells"
                )
            if cfg.subtypes.mode == "weights":
                w = np.array([cfg.subtypes.weights[c] for c in classes], float)
                counts = rng.multinomial(n, w / w.sum())
            else:
                shares = np.sort(shares)[::-1]
                if cfg.subtypes.mode == "balanced":
                    order = np.lexsort((tiebreak, self._totals[group]))
                else:  # paper: a uniformly random choice of m subtypes
                    order = np.argsort(tiebreak)
                counts = np.zeros(k, np.int64)
                counts[order[:m]] = allocate(n, shares)
            self._totals[group] += counts
            for c, v in zip(classes, counts, strict=True):
                if v:
                    per[c] = int(v)
        return SmearCounts(per)

    def give(self, index: int, counts: SmearCounts) -> None:
        """Take smear ``index``'s counts as computed by another census of the same config and
        pool (a worker process gets them with each smear: otherwise every worker would draw
        the census up to its last smear itself, about 0.2 ms a smear)."""
        self._given[index] = counts

    def counts(self, index: int) -> SmearCounts:
        """The counts of smear ``index`` (computing the census up to it if needed)."""
        if index in self._given:
            return self._given[index]
        if index < 0:
            raise IndexError(index)
        while len(self._cache) <= index:
            self._cache.append(self._draw(len(self._cache)))
        return self._cache[index]
