"""Spatial statistics of cell layouts: overlap, contact, spacing, coverage, all in micrometres.

Every function here reads boxes, never pixels. Boxes are ``xyxy`` in pixel edges; the
per-layout summary (:func:`measure_layout`) converts them to micrometres with the layout's
scale, so generated and real sets at different magnifications compare directly.

Definitions
-----------
overlap
    The IoU of each cell's box with its most-overlapping neighbour (0 for an isolated cell).
contact
    Two cells *overlap* when their boxes share area, and *touch or overlap* when the gap
    between their boxes (the Euclidean distance between the rectangles) is at most ``tol_um``.
    Boxes of round cells meet at the corners before the cells do, so box contact slightly
    overstates cell contact, equally for generated and real sets.
nearest-neighbour distance
    Centre-to-centre distance from each cell to the nearest other cell of any class. With the
    *border* edge correction a cell counts only when its nearest neighbour is closer than the
    field's border (otherwise the true neighbour may lie outside the field).
Ripley's K and L
    Translation-corrected estimator on the box centres,
    ``K(r) = |W| / (n (n - 1)) * sum_{i != j} 1(d_ij <= r) * |W| / ((a - |dx|)(b - |dy|))``
    for an ``a x b`` field ``W``; ``L(r) = sqrt(K(r) / pi)``. For complete spatial randomness
    ``L(r) = r``; ``L(r) - r < 0`` means inhibition (cells keep apart), ``> 0`` clustering.
    Several fields pool as ``K = sum_s |W_s| S_s(r) / sum_s n_s (n_s - 1)``. The pair-correlation
    function is ``g(r) = K'(r) / (2 pi r)``.
coverage
    Share of the field covered by the union of the boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import GROUPS, Layout


def _ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each k, the pairs ``(k, m)`` with ``starts[k] <= m < stops[k]``."""
    counts = np.maximum(stops - starts, 0)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    k = np.repeat(np.arange(len(starts)), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return k, starts[k] + offset


def box_pairs(boxes: np.ndarray, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of boxes whose gap is at most ``tol`` (sort and sweep).

    Parameters
    ----------
    boxes : ndarray of shape (N, 4)
        ``xyxy`` boxes.
    tol : float
        Largest gap, in the boxes' units.

    Returns
    -------
    i, j : ndarray of shape (P,), int64
        Indices with ``i != j``, each unordered pair once.
    gap : ndarray of shape (P,)
        Euclidean distance between the two rectangles (0 when they touch or overlap).
    """
    b = np.asarray(boxes, float).reshape(-1, 4)
    order = np.argsort(b[:, 0], kind="stable")
    s = b[order]
    stops = np.searchsorted(s[:, 0], s[:, 2] + tol, side="right")
    a, c = _ranges(np.arange(1, len(s) + 1), stops)
    gx = np.maximum(0.0, s[c, 0] - s[a, 2])
    gy = np.maximum(0.0, np.maximum(s[c, 1] - s[a, 3], s[a, 1] - s[c, 3]))
    gap = np.hypot(gx, gy)
    keep = gap <= tol
    return order[a[keep]], order[c[keep]], gap[keep]


def pair_iou(boxes: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """IoU of the box pairs ``(i, j)``, shape (P,)."""
    a, b = boxes[i], boxes[j]
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def max_iou(boxes: np.ndarray) -> np.ndarray:
    """IoU of each box with its most-overlapping other box, shape (N,).

    Examples
    --------
    >>> max_iou(np.array([[0, 0, 2, 2], [1, 0, 3, 2], [10, 10, 11, 11]])).round(3)
    array([0.333, 0.333, 0.   ])
    """
    b = np.asarray(boxes, float).reshape(-1, 4)
    out = np.zeros(len(b))
    i, j, _ = box_pairs(b, 0.0)
    if len(i):
        v = pair_iou(b, i, j)
        np.maximum.at(out, i, v)
        np.maximum.at(out, j, v)
    return out


def point_pairs(points: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unordered pairs of points at most ``r`` apart (sort and sweep).

    Returns
    -------
    i, j : ndarray of shape (P,), int64
    d : ndarray of shape (P,)
        Their distances.
    """
    p = np.asarray(points, float).reshape(-1, 2)
    order = np.argsort(p[:, 0], kind="stable")
    s = p[order]
    stops = np.searchsorted(s[:, 0], s[:, 0] + r, side="right")
    a, c = _ranges(np.arange(1, len(s) + 1), stops)
    d = np.hypot(s[c, 0] - s[a, 0], s[c, 1] - s[a, 1])
    keep = d <= r
    return order[a[keep]], order[c[keep]], d[keep]


def nearest_neighbour(
    points: np.ndarray, r_hint: float = np.inf,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Distance from each point to its nearest other point, shape (N,) (inf for a lone point).

    Parameters
    ----------
    points : ndarray of shape (N, 2)
    r_hint : float
        Search radius tried first; points with no neighbour within it are searched by brute
        force, so the result is exact whatever the hint.
    pairs : (i, j, d), optional
        The unordered pairs within ``r_hint`` (from :func:`point_pairs`), if known.

    Examples
    --------
    >>> nearest_neighbour(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]]))
    array([5., 1., 1.])
    """
    p = np.asarray(points, float).reshape(-1, 2)
    n = len(p)
    nn = np.full(n, np.inf)
    if n < 2:
        return nn
    if np.isfinite(r_hint):
        i, j, d = pairs if pairs is not None else point_pairs(p, r_hint)
        np.minimum.at(nn, i, d)
        np.minimum.at(nn, j, d)
        todo = np.flatnonzero(~np.isfinite(nn))
    else:
        todo = np.arange(n)
    for start in range(0, len(todo), 256):
        rows = todo[start : start + 256]
        d = np.hypot(p[rows, None, 0] - p[None, :, 0], p[rows, None, 1] - p[None, :, 1])
        d[np.arange(len(rows)), rows] = np.inf
        nn[rows] = d.min(axis=1)
    return nn


def ripley_sums(
    points: np.ndarray, width: float, height: float, r_edges: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Translation-weighted pair counts of one field, per distance bin.

    Parameters
    ----------
    points : ndarray of shape (N, 2)
        Points inside the ``width x height`` field.
    r_edges : ndarray of shape (B + 1,)
        Increasing bin edges starting at 0; pairs beyond the last edge are ignored.
    pairs : (i, j, d), optional
        The unordered pairs within ``r_edges[-1]`` (from :func:`point_pairs`), if known.

    Returns
    -------
    ndarray of shape (B,)
        ``sum over ordered pairs i != j with d_ij in bin b of |W| / ((a - |dx|)(b - |dy|))``.
    """
    r_edges = np.asarray(r_edges, float)
    p = np.asarray(points, float).reshape(-1, 2)
    i, j, d = pairs if pairs is not None else point_pairs(p, float(r_edges[-1]))
    keep = d <= r_edges[-1]
    i, j, d = i[keep], j[keep], d[keep]
    dx = np.abs(p[i, 0] - p[j, 0])
    dy = np.abs(p[i, 1] - p[j, 1])
    w = width * height / np.maximum((width - dx) * (height - dy), 1e-12)
    k = np.searchsorted(r_edges, d, side="left") - 1  # bin b holds r_edges[b] < d <= r_edges[b+1]
    k = np.clip(k, 0, len(r_edges) - 2)
    return 2.0 * np.bincount(k, weights=w, minlength=len(r_edges) - 1)


def ripley_k(weighted_sums: np.ndarray, pairs: float) -> np.ndarray:
    """Pooled K(r) at the bins' right edges.

    Parameters
    ----------
    weighted_sums : ndarray of shape (B,)
        ``sum_s |W_s| * ripley_sums_s`` over the fields pooled.
    pairs : float
        ``sum_s n_s (n_s - 1)`` over the same fields.

    Returns
    -------
    ndarray of shape (B,)
        NaN when there are no pairs.
    """
    if pairs <= 0:
        return np.full(len(weighted_sums), np.nan)
    return np.cumsum(np.asarray(weighted_sums, float)) / pairs


def l_function(k: np.ndarray) -> np.ndarray:
    """Besag's ``L(r) = sqrt(K(r) / pi)``."""
    return np.sqrt(np.asarray(k, float) / np.pi)


def pair_correlation(k: np.ndarray, r_edges: np.ndarray) -> np.ndarray:
    """``g(r) = dK/dr / (2 pi r)`` at the bin centres, from K at the right edges."""
    r_edges = np.asarray(r_edges, float)
    kk = np.concatenate(([0.0], np.asarray(k, float)))
    mid = (r_edges[1:] + r_edges[:-1]) / 2
    return np.diff(kk) / np.diff(r_edges) / (2 * np.pi * np.maximum(mid, 1e-12))


def box_coverage(boxes: np.ndarray, width: int, height: int, step: float = 1.0) -> float:
    """Share of the ``width x height`` field covered by the union of ``boxes``.

    The boxes are painted into a mask of ``step``-pixel cells (box edges rounded to it); with
    ``step = 1`` and integer boxes the result is exact.

    Examples
    --------
    >>> box_coverage(np.array([[0, 0, 5, 10], [0, 0, 10, 5]]), 10, 10)
    0.75
    """
    b = np.asarray(boxes, float).reshape(-1, 4)
    gw = max(1, int(np.ceil(width / step)))
    gh = max(1, int(np.ceil(height / step)))
    if len(b) == 0:
        return 0.0
    g = np.clip(np.round(b / step), 0, [gw, gh, gw, gh]).astype(np.int64)
    mask = np.zeros((gh, gw), bool)
    for x0, y0, x1, y1 in g.tolist():
        mask[y0:y1, x0:x1] = True
    covered = np.count_nonzero(mask) * step * step
    # the last row/column of cells may stick out of the field
    return float(min(1.0, covered / (width * height)))


@dataclass
class LayoutMeasures:
    """Per-cell and per-field spatial measures of one layout (distances in micrometres).

    Attributes
    ----------
    groups : ndarray of shape (N,), int64
        Index into :data:`~hemosynth.stats.layout.GROUPS`.
    width_um, height_um : ndarray of shape (N,)
        Box sizes.
    border : ndarray of shape (N,), bool
        The box touches the field's border (it is cut, or may be).
    nn_um : ndarray of shape (N,)
        Nearest-neighbour distance (inf when alone).
    nn_ok : ndarray of shape (N,), bool
        The border correction keeps the cell (its neighbour is closer than the border).
    max_iou : ndarray of shape (N,)
    overlaps, touches : ndarray of shape (N, G), bool
        The cell overlaps / touches or overlaps at least one cell of group g.
    ripley : ndarray of shape (G + 1, B)
        ``|W| *`` translation-weighted pair sums, for all cells (row 0) and each group.
    n_pairs : ndarray of shape (G + 1,)
        ``n (n - 1)`` for all cells and each group.
    coverage : float
        Box-union coverage of the field.
    cell_coverage : float
        Sum of visible cell pixels over the field (generated sets; NaN otherwise).
    """

    groups: np.ndarray
    width_um: np.ndarray
    height_um: np.ndarray
    border: np.ndarray
    nn_um: np.ndarray
    nn_ok: np.ndarray
    max_iou: np.ndarray
    overlaps: np.ndarray
    touches: np.ndarray
    ripley: np.ndarray
    n_pairs: np.ndarray
    coverage: float
    cell_coverage: float


def measure_layout(lay: Layout, r_edges: np.ndarray, tol_um: float = 0.5) -> LayoutMeasures:
    """Compute the spatial measures of one layout.

    Parameters
    ----------
    lay : Layout
    r_edges : ndarray of shape (B + 1,)
        Distance bins for Ripley's K, in micrometres.
    tol_um : float
        Largest box gap that counts as touching, in micrometres.
    """
    s = lay.um_per_px
    b = lay.boxes * s
    w_um, h_um = lay.width * s, lay.height * s
    g = lay.groups
    n = len(g)
    ng = len(GROUPS)
    eps = 1e-6
    border = (
        (lay.boxes[:, 0] <= eps) | (lay.boxes[:, 1] <= eps)
        | (lay.boxes[:, 2] >= lay.width - eps) | (lay.boxes[:, 3] >= lay.height - eps)
    )
    centres = np.column_stack(((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2))
    r_max = float(r_edges[-1])
    pairs = point_pairs(centres, r_max)
    nn = nearest_neighbour(centres, r_max, pairs)
    to_border = np.minimum.reduce(
        [centres[:, 0], centres[:, 1], w_um - centres[:, 0], h_um - centres[:, 1]]
    ) if n else np.empty(0)
    nn_ok = nn <= to_border

    i, j, _gap = box_pairs(b, tol_um)
    iou = pair_iou(b, i, j)
    mx = np.zeros(n)
    overlaps = np.zeros((n, ng), bool)
    touches = np.zeros((n, ng), bool)
    if len(i):
        np.maximum.at(mx, i, iou)
        np.maximum.at(mx, j, iou)
        ov = iou > 0
        overlaps[i[ov], g[j[ov]]] = True
        overlaps[j[ov], g[i[ov]]] = True
        touches[i, g[j]] = True
        touches[j, g[i]] = True

    area = w_um * h_um
    ripley = np.zeros((ng + 1, len(r_edges) - 1))
    n_pairs = np.zeros(ng + 1)
    ripley[0] = area * ripley_sums(centres, w_um, h_um, r_edges, pairs)
    n_pairs[0] = n * (n - 1)
    pi, pj, pd = pairs
    same = g[pi] == g[pj]
    counts = np.bincount(g, minlength=ng)
    for k in range(ng):
        m = int(counts[k])
        if m >= 2:
            sel = same & (g[pi] == k)
            ripley[k + 1] = area * ripley_sums(centres, w_um, h_um, r_edges,
                                               (pi[sel], pj[sel], pd[sel]))
            n_pairs[k + 1] = m * (m - 1)
    step = max(1.0, float(np.ceil(np.sqrt(lay.width * lay.height / 4e6))))  # <= 4 M cells
    cov = box_coverage(lay.boxes, lay.width, lay.height, step)
    cell_cov = (
        float(np.sum(lay.area)) / (lay.width * lay.height) if lay.area is not None else np.nan
    )
    return LayoutMeasures(
        groups=g, width_um=b[:, 2] - b[:, 0], height_um=b[:, 3] - b[:, 1], border=border,
        nn_um=nn, nn_ok=nn_ok, max_iou=mx, overlaps=overlaps, touches=touches, ripley=ripley,
        n_pairs=n_pairs, coverage=cov, cell_coverage=cell_cov,
    )


__all__ = [
    "LayoutMeasures",
    "box_coverage",
    "box_pairs",
    "l_function",
    "max_iou",
    "measure_layout",
    "nearest_neighbour",
    "pair_correlation",
    "pair_iou",
    "point_pairs",
    "ripley_k",
    "ripley_sums",
]
