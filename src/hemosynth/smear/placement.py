"""Placement strategies: where each cell's box goes (Algorithm 1's paste loop).

Every strategy proposes paste points and (except the naive ones) checks the IoU of the
proposed box against the earlier boxes its neighbour search finds; a proposal is accepted when
every IoU found is <= T. Each cell gets at most ``max_attempts`` proposals and is dropped (and
counted) otherwise.

Registry (:data:`STRATEGIES`):

``random``
    the paper's naive approach 1: a uniformly random paste point, no overlap check.
``blocks``
    the paper's naive approach 2: a random point inside a uniformly chosen one of M x N
    virtual blocks, no overlap check.
``lsh``
    the paper's method: paste points (box centres, in pixels) hashed by L random binary
    projections (bit l = 1 where ``normal_l . p > 0``, as NearPy's RandomBinaryProjections);
    the candidates are the earlier points in the same bucket, optionally only the k nearest;
    the first ``lsh_warmup`` cells are pasted without a query.
``grid``
    exact: a uniform-grid spatial hash in which every box is registered in each grid cell it
    covers, so every earlier box whose interior meets the proposal is a candidate. No accepted
    pair ever exceeds T.
``brute``
    exact reference: checks every earlier box.

Boxes are ``(x0, y0, x1, y1)`` in pixel edges; paste points are integer top-left corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PlacementConfig


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two xyxy boxes (0 for boxes that only touch)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU, shape (len(a), len(b)), for xyxy boxes of shapes (N, 4) and (M, 4)."""
    a = np.asarray(boxes_a, float)[:, None, :]
    b = np.asarray(boxes_b, float)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(inter > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class PlacementStats:
    """Counters of one smear's placement.

    Attributes
    ----------
    attempts : int
        Proposals made.
    checks : int
        IoU evaluations (pair checks) made.
    scans : int
        Other per-candidate work (distance evaluations of ``lsh``'s nearest filter).
    """

    attempts: int = 0
    checks: int = 0
    scans: int = 0


class Placer:
    """Base placer: proposes paste points and checks them against found neighbours.

    Parameters
    ----------
    width, height : int
        Field size in pixels.
    threshold : float
        T: a proposal is accepted when its IoU with every neighbour found is <= T.
    cfg : PlacementConfig
    rng : numpy.random.Generator
    """

    checks_overlap = True

    def __init__(
        self, width: int, height: int, threshold: float, cfg: PlacementConfig,
        rng: np.random.Generator,
    ) -> None:
        self.width, self.height = width, height
        self.threshold = threshold
        self.cfg = cfg
        self.rng = rng
        self.boxes: list[tuple[float, float, float, float]] = []
        self.stats = PlacementStats()

    # -- hooks ---------------------------------------------------------------------------------
    def propose_centre(
        self, lo: tuple[float, float], hi: tuple[float, float]
    ) -> tuple[float, float]:
        """A paste point (box centre) in the allowed rectangle ``[lo, hi]``."""
        return self.rng.uniform(lo[0], hi[0]), self.rng.uniform(lo[1], hi[1])

    def neighbours(self, box: tuple[float, float, float, float]) -> list[int]:
        """Indices of earlier boxes to check the proposal ``box`` against."""
        return []

    def register(self, i: int, box: tuple[float, float, float, float]) -> None:
        """Record accepted box ``i`` in the neighbour index."""

    # -- the loop ------------------------------------------------------------------------------
    def place(self, w: int, h: int, inside: bool) -> tuple[int, int] | None:
        """Find a top-left corner for a ``w`` x ``h`` box, or None after ``max_attempts``.

        Parameters
        ----------
        w, h : int
            Box size in pixels.
        inside : bool
            Keep the whole box inside the field; otherwise only its centre must be inside.
        """
        if inside:
            if w > self.width or h > self.height:
                return None
            lo, hi = (w / 2, h / 2), (self.width - w / 2, self.height - h / 2)
        else:
            lo, hi = (0.0, 0.0), (float(self.width), float(self.height))
        for _ in range(self.cfg.max_attempts):
            self.stats.attempts += 1
            cx, cy = self.propose_centre(lo, hi)
            x0 = int(np.floor(cx - w / 2 + 0.5))
            y0 = int(np.floor(cy - h / 2 + 0.5))
            if inside:
                x0 = min(max(x0, 0), self.width - w)
                y0 = min(max(y0, 0), self.height - h)
            box = (float(x0), float(y0), float(x0 + w), float(y0 + h))
            if self.checks_overlap and not self._fits(box):
                continue
            self.boxes.append(box)
            self.register(len(self.boxes) - 1, box)
            return x0, y0
        return None

    def _fits(self, box: tuple[float, float, float, float]) -> bool:
        t = self.threshold
        boxes = self.boxes
        cands = self.neighbours(box)
        self.stats.checks += len(cands)
        for j in cands:
            if iou(box, boxes[j]) > t:
                return False
        return True


class RandomPlacer(Placer):
    """Naive approach 1: random paste points, no overlap check."""

    checks_overlap = False


class BlocksPlacer(Placer):
    """Naive approach 2: a random point inside a uniformly chosen one of M x N blocks."""

    checks_overlap = False

    def propose_centre(self, lo, hi):
        m, n = self.cfg.blocks
        bw = (hi[0] - lo[0]) / m
        bh = (hi[1] - lo[1]) / n
        i, j = int(self.rng.integers(m)), int(self.rng.integers(n))
        return (
            self.rng.uniform(lo[0] + i * bw, lo[0] + (i + 1) * bw),
            self.rng.uniform(lo[1] + j * bh, lo[1] + (j + 1) * bh),
        )


class BrutePlacer(Placer):
    """Exact reference: every earlier box is a candidate."""

    def neighbours(self, box):
        return range(len(self.boxes))  # type: ignore[return-value]

    def _fits(self, box):
        n = len(self.boxes)
        self.stats.checks += n
        if n == 0:
            return True
        arr = np.asarray(self.boxes)
        return bool((iou_matrix(np.asarray([box]), arr) <= self.threshold).all())


class GridPlacer(Placer):
    """Exact: a uniform-grid spatial hash over box extents.

    Each accepted box is registered in every grid cell its extent covers; a proposal's
    candidates are the boxes registered in the cells its extent covers. Two boxes whose
    interiors meet share a point, hence a grid cell, so no overlapping box is missed.
    """

    def __init__(self, width, height, threshold, cfg, rng, cell: int | None = None) -> None:
        super().__init__(width, height, threshold, cfg, rng)
        self.cell = int(cell) if cell else 64
        self.buckets: dict[tuple[int, int], list[int]] = {}

    def _cells(self, box):
        g = self.cell
        # the interior (x0, x1) spans columns floor(x0/g) .. ceil(x1/g) - 1
        c0, r0 = int(np.floor(box[0] / g)), int(np.floor(box[1] / g))
        c1, r1 = int(np.ceil(box[2] / g)) - 1, int(np.ceil(box[3] / g)) - 1
        return ((c, r) for c in range(c0, c1 + 1) for r in range(r0, r1 + 1))

    def neighbours(self, box):
        found: set[int] = set()
        get = self.buckets.get
        for key in self._cells(box):
            ids = get(key)
            if ids:
                found.update(ids)
        return sorted(found)

    def register(self, i, box):
        for key in self._cells(box):
            self.buckets.setdefault(key, []).append(i)


def lsh_hash(normals: np.ndarray, point: np.ndarray) -> bytes:
    """The bucket key of ``point``: bit l is 1 where ``normals[l] . point > 0``.

    Parameters
    ----------
    normals : ndarray of shape (L, 2)
    point : ndarray of shape (2,)
    """
    return np.packbits(normals @ point > 0).tobytes()


class LSHPlacer(Placer):
    """The paper's LSH engine (NearPy-style random binary projections).

    Points are box centres in pixel coordinates. The first ``lsh_warmup`` cells are accepted
    without a query. Candidates are the earlier points in the proposal's bucket, or only the
    ``lsh_nearest`` nearest of them (NearPy's ``NearestFilter(10)`` default) by the configured
    distance.
    """

    def __init__(self, width, height, threshold, cfg, rng) -> None:
        super().__init__(width, height, threshold, cfg, rng)
        self.normals = rng.standard_normal((cfg.lsh_projections, 2))
        self.buckets: dict[bytes, list[int]] = {}
        self.points: list[np.ndarray] = []

    @staticmethod
    def _centre(box) -> np.ndarray:
        return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])

    def neighbours(self, box):
        if len(self.boxes) < self.cfg.lsh_warmup:
            return []
        p = self._centre(box)
        ids = self.buckets.get(lsh_hash(self.normals, p), [])
        k = self.cfg.lsh_nearest
        if k and len(ids) > k:
            self.stats.scans += len(ids)
            pts = np.asarray([self.points[j] for j in ids])
            if self.cfg.lsh_distance == "cosine":
                num = pts @ p
                den = np.linalg.norm(pts, axis=1) * np.linalg.norm(p)
                d = 1 - num / np.where(den > 0, den, 1)
            else:
                d = np.linalg.norm(pts - p, axis=1)
            keep = np.argsort(d, kind="stable")[:k]
            return [ids[j] for j in keep]
        return list(ids)

    def register(self, i, box):
        p = self._centre(box)
        self.points.append(p)
        self.buckets.setdefault(lsh_hash(self.normals, p), []).append(i)


#: strategy name -> placer class
STRATEGIES: dict[str, type[Placer]] = {
    "grid": GridPlacer,
    "lsh": LSHPlacer,
    "brute": BrutePlacer,
    "random": RandomPlacer,
    "blocks": BlocksPlacer,
}


def make_placer(
    width: int, height: int, threshold: float, cfg: PlacementConfig, rng: np.random.Generator,
    typical_size: float | None = None,
) -> Placer:
    """Instantiate the configured strategy for one smear.

    Parameters
    ----------
    typical_size : float, optional
        A typical box side in pixels; sets ``grid``'s cell size.
    """
    cls = STRATEGIES[cfg.strategy]
    if cls is GridPlacer:
        return GridPlacer(width, height, threshold, cfg, rng, cell=int(max(8, typical_size or 64)))
    return cls(width, height, threshold, cfg, rng)


def audit(boxes: np.ndarray, threshold: float) -> int:
    """Brute-force count of box pairs whose IoU exceeds ``threshold``.

    Parameters
    ----------
    boxes : ndarray of shape (N, 4)
    """
    boxes = np.asarray(boxes, float)
    n = len(boxes)
    bad = 0
    for s in range(0, n, 512):
        m = iou_matrix(boxes[s : s + 512], boxes)
        rows = np.arange(s, min(n, s + 512))[:, None]
        cols = np.arange(n)[None, :]
        bad += int(((m > threshold) & (cols > rows)).sum())
    return bad
