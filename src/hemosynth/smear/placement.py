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

Cover limits (``placement.max_cover``): IoU cannot see a small box lying inside a big one (a
platelet on a red cell has IoU about 0.1 with it), so a cell may also carry a *cover* limit:
no one neighbour's box may cover more than that share of its own box, whichever of the two is
placed first. The checking strategies apply it exactly like T (``grid`` and ``brute`` never
break it, ``lsh`` checks only the neighbours it finds); the naive ones ignore it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..config import PlacementConfig
from . import gridjit


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


def cover_violations(
    cands: np.ndarray, others: np.ndarray, cover_c: np.ndarray | float, cover_o: np.ndarray
) -> np.ndarray:
    """Where a pair breaks a cover limit, boolean array of shape ``(len(cands), M)``.

    Parameters
    ----------
    cands : ndarray of shape (N, 4)
        Proposals (xyxy), each with the cover limit ``cover_c`` (scalar or shape (N,)).
    others : ndarray of shape (N, M, 4) or (M, 4)
        Their neighbours, with limits ``cover_o`` of shape (N, M) or (M,).

    A pair breaks a limit when the intersection exceeds ``cover_c`` times the proposal's area
    or ``cover_o`` times the neighbour's.
    """
    c = np.asarray(cands, float)[:, None, :]
    o = np.asarray(others, float)
    if o.ndim == 2:
        o = o[None, :, :]
    iw = np.minimum(c[..., 2], o[..., 2]) - np.maximum(c[..., 0], o[..., 0])
    ih = np.minimum(c[..., 3], o[..., 3]) - np.maximum(c[..., 1], o[..., 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_c = (c[..., 2] - c[..., 0]) * (c[..., 3] - c[..., 1])
    area_o = (o[..., 2] - o[..., 0]) * (o[..., 3] - o[..., 1])
    cc = np.asarray(cover_c, float)
    cc = cc[:, None] if cc.ndim == 1 else cc
    return (inter > cc * area_c) | (inter > np.asarray(cover_o, float) * area_o)


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
    seconds : float
        Time spent placing (proposals, neighbour search, checks).
    """

    attempts: int = 0
    checks: int = 0
    scans: int = 0
    seconds: float = 0.0


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
        self.covers: list[float] = []  # each accepted box's cover limit (1 = none)
        self.cover = 1.0  # the cell being placed
        self.stats = PlacementStats()

    #: proposals in the first batch (one vectorised draw and check per batch; each next batch
    #: of the same cell is twice as large)
    batch = 4

    # -- hooks ---------------------------------------------------------------------------------
    def propose_centres(
        self, lo: tuple[float, float], hi: tuple[float, float], k: int
    ) -> np.ndarray:
        """``k`` paste points (box centres), shape (k, 2), in the rectangle ``[lo, hi]``.

        Uniform: ``lo + (hi - lo) * u`` with ``u = rng.random((k, 2))`` (what
        ``rng.uniform(lo, hi, (k, 2))`` computes, at a tenth of its call overhead).
        """
        u = self.rng.random((k, 2))
        u *= (hi[0] - lo[0], hi[1] - lo[1])
        u += lo
        return u

    def neighbours(self, box: tuple[float, float, float, float]) -> list[int]:
        """Indices of earlier boxes to check the proposal ``box`` against."""
        return []

    def register(self, i: int, box: tuple[float, float, float, float]) -> None:
        """Record accepted box ``i`` in the neighbour index."""

    def first_fit(self, cands: np.ndarray) -> int:
        """Index of the first proposal (rows of ``cands``, xyxy) that fits, or -1.

        Counts one attempt per proposal examined and the pair checks made.
        """
        for k, row in enumerate(cands):
            self.stats.attempts += 1
            box = (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
            if not self.checks_overlap or self._fits(box):
                return k
        return -1

    # -- the loop ------------------------------------------------------------------------------
    def place(self, w: int, h: int, inside: bool, cover: float = 1.0) -> tuple[int, int] | None:
        """Find a top-left corner for a ``w`` x ``h`` box, or None after ``max_attempts``.

        Parameters
        ----------
        w, h : int
            Box size in pixels.
        inside : bool
            Keep the whole box inside the field; otherwise only its centre must be inside.
        cover : float
            Largest share of this box that one neighbour's box may cover (1 = no limit); it
            binds the cells placed later too.
        """
        t0 = time.perf_counter()
        self.cover = float(cover)
        try:
            return self._place(w, h, inside)
        finally:
            self.stats.seconds += time.perf_counter() - t0

    def place_many(
        self, sizes: np.ndarray, inside: np.ndarray, covers: np.ndarray
    ) -> list[tuple[int, int] | None]:
        """:meth:`place` for cells in order: ``sizes`` (m, 2) of ``w, h``, ``inside`` and
        ``covers`` of shape (m,). Returns each cell's top-left corner, or None if dropped."""
        return [self.place(int(wh[0]), int(wh[1]), bool(ins), float(c))
                for wh, ins, c in zip(sizes, inside, covers, strict=True)]

    def centre_range(
        self, w: int, h: int, inside: bool
    ) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """Where a ``w`` x ``h`` box's centre may be proposed, ``(lo, hi)``; None if a box
        that must stay inside is larger than the field."""
        if inside:
            if w > self.width or h > self.height:
                return None
            return (w / 2, h / 2), (self.width - w / 2, self.height - h / 2)
        return (0.0, 0.0), (float(self.width), float(self.height))

    def centre_ranges(
        self, sizes: np.ndarray, inside: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`centre_range` of many boxes at once: ``lo`` and ``hi - lo`` (each (m, 2),
        zero where there is no range) and whether each box has a range, shape (m,)."""
        w, h = sizes[:, 0], sizes[:, 1]
        ok = ~inside | ((w <= self.width) & (h <= self.height))
        field = np.array([float(self.width), float(self.height)])
        lo = np.where(inside[:, None], sizes / 2, 0.0)
        extent = np.where(inside[:, None], (field - sizes / 2) - lo, field)
        lo[~ok] = 0.0
        extent[~ok] = 0.0
        return lo, extent, ok

    def _place(self, w: int, h: int, inside: bool) -> tuple[int, int] | None:
        bounds = self.centre_range(w, h, inside)
        if bounds is None:
            return None
        lo, hi = bounds
        # every proposal of the cell is drawn at once (the same draws whether it fits at the
        # first or the last), then checked in batches, each twice the last
        proposals = self.propose_centres(lo, hi, self.cfg.max_attempts)
        start, batch = 0, self.batch
        while start < len(proposals):
            centres = proposals[start : start + batch]
            start += batch
            batch *= 2  # a crowded field: check more proposals at once
            x0 = np.floor(centres[:, 0] - w / 2 + 0.5)
            y0 = np.floor(centres[:, 1] - h / 2 + 0.5)
            if inside:
                x0 = np.minimum(np.maximum(x0, 0), self.width - w)
                y0 = np.minimum(np.maximum(y0, 0), self.height - h)
            cands = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
            j = self.first_fit(cands)
            if j >= 0:
                box = (float(x0[j]), float(y0[j]), float(x0[j] + w), float(y0[j] + h))
                self.boxes.append(box)
                self.covers.append(self.cover)
                self.register(len(self.boxes) - 1, box)
                return int(x0[j]), int(y0[j])
        return None

    def _fits(self, box: tuple[float, float, float, float]) -> bool:
        t = self.threshold
        boxes = self.boxes
        cands = self.neighbours(box)
        self.stats.checks += len(cands)
        for j in cands:
            if iou(box, boxes[j]) > t:
                return False
        limited = [j for j in cands if self.covers[j] < 1.0] if self.cover >= 1.0 else cands
        if limited:
            others = np.asarray([boxes[j] for j in limited])
            lims = np.asarray([self.covers[j] for j in limited])
            if cover_violations(np.asarray([box]), others, self.cover, lims).any():
                return False
        return True


class RandomPlacer(Placer):
    """Naive approach 1: random paste points, no overlap check."""

    checks_overlap = False


class BlocksPlacer(Placer):
    """Naive approach 2: a random point inside a uniformly chosen one of M x N blocks."""

    checks_overlap = False

    def propose_centres(self, lo, hi, k):
        m, n = self.cfg.blocks
        size = np.array([(hi[0] - lo[0]) / m, (hi[1] - lo[1]) / n])
        block = np.stack([self.rng.integers(m, size=k), self.rng.integers(n, size=k)], axis=1)
        return np.asarray(lo) + (block + self.rng.random((k, 2))) * size


class BrutePlacer(Placer):
    """Exact reference: every earlier box is a candidate."""

    def neighbours(self, box):
        return range(len(self.boxes))  # type: ignore[return-value]

    def first_fit(self, cands):
        n = len(self.boxes)
        if n == 0:
            self.stats.attempts += 1
            return 0
        boxes = np.asarray(self.boxes)
        ok = (iou_matrix(cands, boxes) <= self.threshold).all(axis=1)
        ok &= ~cover_violations(cands, boxes, self.cover, np.asarray(self.covers)).any(axis=1)
        hit = np.flatnonzero(ok)
        used = int(hit[0]) + 1 if hit.size else len(cands)
        self.stats.attempts += used
        self.stats.checks += used * n
        return int(hit[0]) if hit.size else -1


class GridPlacer(Placer):
    """Exact: a uniform-grid spatial hash over box extents.

    Each accepted box is registered in every grid cell its extent covers; a proposal's
    candidates are the boxes registered in the cells its extent covers. Two boxes whose
    interiors meet share a point, hence a grid cell, so no overlapping box is missed. A batch of
    proposals is rounded, checked and its first fit registered in compiled code
    (:mod:`.gridjit`), every cell of :meth:`place_many` in one call; the proposals are drawn
    here, so the random stream is the base loop's.
    """

    def __init__(self, width, height, threshold, cfg, rng, cell: int | None = None) -> None:
        super().__init__(width, height, threshold, cfg, rng)
        self.cell = int(cell) if cell else 64
        # cells cover the field plus a margin for boxes hanging over the border
        self.pad = 4
        self.cols = int(np.ceil(width / self.cell)) + 2 * self.pad
        self.rows = int(np.ceil(height / self.cell)) + 2 * self.pad
        self.cap = 8
        self.table = np.full((self.rows, self.cols, self.cap), -1, np.int32)
        self.fill = np.zeros((self.rows, self.cols), np.int32)
        self.arr = np.zeros((64, 4))
        self.cov = np.ones(64)
        self.mark = np.zeros(64, np.int64)  # deduplicates a proposal's candidates
        self.stamp = np.zeros(1, np.int64)

    def _span(self, x0, y0, x1, y1):
        """Grid index ranges (inclusive) covered by the interior of boxes (arrays or floats)."""
        g = self.cell
        c0 = np.floor(np.asarray(x0) / g).astype(np.int64) + self.pad
        r0 = np.floor(np.asarray(y0) / g).astype(np.int64) + self.pad
        c1 = np.ceil(np.asarray(x1) / g).astype(np.int64) - 1 + self.pad
        r1 = np.ceil(np.asarray(y1) / g).astype(np.int64) - 1 + self.pad
        return c0, r0, c1, r1

    def _grow(self) -> None:
        bigger = np.full((self.rows, self.cols, self.cap * 2), -1, np.int32)
        bigger[:, :, : self.cap] = self.table
        self.table, self.cap = bigger, self.cap * 2

    def _room(self, i: int) -> None:
        """Make the per-box arrays hold box ``i``."""
        while i >= len(self.arr):
            self.arr = np.concatenate([self.arr, np.zeros_like(self.arr)])
            self.cov = np.concatenate([self.cov, np.ones_like(self.cov)])
            self.mark = np.concatenate([self.mark, np.zeros_like(self.mark)])

    def _insert(self, i: int, box) -> None:
        """Put box ``i`` in the grid, growing the cells' capacity until it fits."""
        x0, y0, x1, y1 = (float(v) for v in box)
        while not gridjit.register(i, x0, y0, x1, y1, self.table, self.fill, self.cell,
                                   self.pad):
            self._grow()

    def neighbours(self, box):
        c0, r0, c1, r1 = (int(v) for v in self._span(*box))
        c0, r0 = max(c0, 0), max(r0, 0)
        ids = self.table[r0 : r1 + 1, c0 : c1 + 1].ravel()
        return sorted(set(ids[ids >= 0].tolist()))

    def register(self, i, box):
        self._room(i)
        self.arr[i] = box
        self.cov[i] = self.covers[i]
        self._insert(i, box)

    def first_fit(self, cands):
        cands = np.ascontiguousarray(cands, dtype=np.float64)
        j, used, checks = gridjit.first_fit(
            cands, self.table, self.fill, self.arr, self.cov, self.mark, self.stamp, self.cell,
            self.pad, float(self.threshold), float(self.cover),
        )
        self.stats.attempts += used
        self.stats.checks += checks
        return j

    def _place(self, w: int, h: int, inside: bool) -> tuple[int, int] | None:
        return self._place_cells(np.array([[w, h]], float), np.array([inside]),
                                 np.array([self.cover]))[0]

    def place_many(self, sizes, inside, covers):
        t0 = time.perf_counter()
        try:
            return self._place_cells(np.asarray(sizes, float).reshape(-1, 2),
                                     np.asarray(inside, bool), np.asarray(covers, float))
        finally:
            self.stats.seconds += time.perf_counter() - t0

    def _place_cells(self, sizes, inside, covers) -> list[tuple[int, int] | None]:
        """Every cell in one compiled loop; the draws are the base loop's, cell by cell."""
        m = len(sizes)
        lo, extent, ok = self.centre_ranges(sizes, inside)
        urow = np.where(ok, np.cumsum(ok) - 1, -1).astype(np.int64)  # each cell's row of u
        v = int(ok.sum())
        u = self.rng.random((v, self.cfg.max_attempts, 2))  # as v calls, one per cell
        n0 = len(self.boxes)
        self._room(n0 + m)
        out = np.zeros((m, 2))
        placed = np.zeros(m, bool)
        counts = np.zeros(2, np.int64)
        i, n = 0, n0
        while i < m:
            i, n, full = gridjit.place_cells(
                u, urow, lo, extent, sizes, inside, covers, i, n, float(self.width),
                float(self.height), self.table, self.fill, self.arr, self.cov, self.mark,
                self.stamp, self.cell, self.pad, float(self.threshold), out, placed, counts,
            )
            if full:  # a grid cell was full: grow, then register the box the kernel placed
                self._insert(n - 1, self.arr[n - 1])
        self.stats.attempts += int(counts[0])
        self.stats.checks += int(counts[1])
        boxes = np.concatenate([out, out + sizes], axis=1)[placed]
        self.boxes.extend(map(tuple, boxes.tolist()))
        self.covers.extend(covers[placed].tolist())
        corners = out.astype(np.int64).tolist()
        return [tuple(c) if p else None for c, p in zip(corners, placed.tolist(), strict=True)]


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


def audit(boxes: np.ndarray, threshold: float, covers: np.ndarray | None = None) -> int:
    """Brute-force count of box pairs whose IoU exceeds ``threshold`` or that break a cover
    limit.

    Parameters
    ----------
    boxes : ndarray of shape (N, 4)
    covers : ndarray of shape (N,), optional
        Each box's cover limit (see :func:`cover_violations`); None = no limits.
    """
    boxes = np.asarray(boxes, float)
    n = len(boxes)
    bad = 0
    for s in range(0, n, 512):
        m = iou_matrix(boxes[s : s + 512], boxes) > threshold
        if covers is not None:
            cov = np.asarray(covers, float)
            m |= cover_violations(boxes[s : s + 512], boxes, cov[s : s + 512], cov)
        rows = np.arange(s, min(n, s + 512))[:, None]
        cols = np.arange(n)[None, :]
        bad += int((m & (cols > rows)).sum())
    return bad
