"""Background removal: isolate the one cell of interest in a crop, with a soft alpha edge.

Two segmenters, both pure functions of an RGB crop and the point the cell is centred on:

:func:`segment_cell`
    For nucleated cells (white cells, nucleated red cells). The nucleus is found by its stain
    (dark and blue: the top class of a three-level Otsu split of a nucleus score built from
    Lab ``L`` and ``b``, which keeps red cells out of it); the lobes near the centre are joined
    into one seed. A small per-pixel classifier (a 5-8-1 perceptron on the colour relative to
    the plasma and local texture) is fitted on each crop alone, to pseudo-labels from the
    geometry (a thin ring just outside the nucleus is cell; plasma away from the nucleus,
    other nuclei, far pixels and the crop's border band are background); nothing is learned
    across crops and no weights are stored. Its probability of "cell", less a prior falling
    with the distance from the nucleus, copes with pale cytoplasm that is hardly darker than
    the plasma and with red cells of the cytoplasm's lightness. GrabCut on that
    probability (next to two colour channels) makes the mask, with other cells' nuclei as
    sure background; a morphological opening cuts thin bridges to touching red cells, only
    the component holding the nucleus is kept, and a last GrabCut on the colours moves the
    edge to the colour edge within a narrow band.
:func:`segment_blob`
    For cells without a nucleus (red cells, platelets), cut from boxes or crop backgrounds:
    the cell is what differs from the plasma colour (Otsu on the colour distance), split from
    touching neighbours by a distance-transform watershed, and the component at the centre
    is kept.

Both return a :class:`Segmentation` whose ``alpha`` ramps from 0 to 255 over a
``feather``-pixel band across the mask's edge (a signed-distance ramp), so the sprite blends
into a new background without a hard cut line.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "Segmentation", "cutout", "segment_blob", "segment_cell", "segment_stained", "soft_alpha",
]


@dataclass(frozen=True)
class Segmentation:
    """The result of segmenting one cell in a crop.

    Attributes
    ----------
    mask : ndarray of shape (H, W), bool
        The whole cell.
    alpha : ndarray of shape (H, W), uint8
        Soft alpha: 255 inside, a ramp over the edge, 0 outside.
    nucleus : ndarray of shape (H, W), bool
        The nucleus (all False for :func:`segment_blob`).
    n_nuclei : int
        Nucleus-sized stained components inside the mask (2+ hints at two merged cells).
    """

    mask: np.ndarray
    alpha: np.ndarray
    nucleus: np.ndarray
    n_nuclei: int = 0

    @property
    def area(self) -> int:
        """Pixels in the mask."""
        return int(np.count_nonzero(self.mask))

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """``x0, y0, x1, y1`` of the mask (pixel edges); zeros if empty."""
        ys, xs = np.nonzero(self.mask)
        if not len(xs):
            return (0, 0, 0, 0)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    def touches_border(self, margin: int = 1) -> bool:
        """True if the mask reaches within ``margin`` pixels of the crop edge."""
        m = margin
        return bool(
            self.mask[:m].any() or self.mask[-m:].any()
            or self.mask[:, :m].any() or self.mask[:, -m:].any()
        )


def _prepare(rgb: np.ndarray, center: tuple[float, float] | None):
    """RGB uint8 copy, its height and width, the centre (default: the crop's), smoothed Lab."""
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    if center is None:
        center = ((h - 1) / 2, (w - 1) / 2)
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (0, 0), 1.0), cv2.COLOR_RGB2LAB).astype(np.float32)
    return rgb, h, w, center, lab


def _disk(r: float) -> np.ndarray:
    d = max(1, int(round(r)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * d + 1, 2 * d + 1))


def _otsu(values: np.ndarray) -> float:
    """Otsu threshold of a 1-D array of floats."""
    v = values.astype(np.float32).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-6:
        return lo
    hist, edges = np.histogram(v, bins=256, range=(lo, hi))
    p = hist.astype(np.float64) / hist.sum()
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centers)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * (1 - w0))
    between = np.nan_to_num(between)
    return float(centers[int(np.argmax(between))])


def _otsu3(values: np.ndarray, bins: int = 128) -> tuple[float, float]:
    """Two thresholds splitting a 1-D array into three classes (multi-level Otsu)."""
    v = values.astype(np.float32).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-6:
        return lo, lo
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    p = hist.astype(np.float64) / hist.sum()
    c = (edges[:-1] + edges[1:]) / 2
    P = np.concatenate(([0.0], np.cumsum(p)))
    S = np.concatenate(([0.0], np.cumsum(p * c)))
    i, j = np.triu_indices(bins + 1, k=1)
    ok = (i >= 1) & (j <= bins - 1)
    i, j = i[ok], j[ok]
    w0, w1, w2 = P[i], P[j] - P[i], 1.0 - P[j]
    s0, s1, s2 = S[i], S[j] - S[i], S[-1] - S[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = s0**2 / w0 + s1**2 / w1 + s2**2 / w2
    between = np.where((w0 > 0) & (w1 > 0) & (w2 > 0), between, -np.inf)
    k = int(np.argmax(between))
    return float(edges[i[k]]), float(edges[j[k]])


def _component_at(mask: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """The connected component of ``mask`` at ``point`` (row, col), or nearest to it."""
    n, lab, stats, cents = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask, bool)
    r, c = int(round(point[0])), int(round(point[1]))
    r = min(max(r, 0), mask.shape[0] - 1)
    c = min(max(c, 0), mask.shape[1] - 1)
    k = lab[r, c]
    if k == 0:
        d = np.hypot(cents[1:, 0] - c, cents[1:, 1] - r) / np.sqrt(stats[1:, cv2.CC_STAT_AREA])
        k = 1 + int(np.argmin(d))
    return lab == k


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    h, w = m.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = m
    flood = pad.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    return (pad | (1 - flood))[1:-1, 1:-1].astype(bool)


def soft_alpha(mask: np.ndarray, feather: float = 1.5) -> np.ndarray:
    """A soft alpha from a binary mask: a linear ramp over ``feather`` px across the edge.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
    feather : float
        Width of the ramp in pixels; 0 gives a hard 0/255 alpha.

    Returns
    -------
    ndarray of shape (H, W), uint8
        255 deep inside, 0 outside, about 128 on the mask's edge.
    """
    m = mask.astype(np.uint8)
    if feather <= 0 or not m.any():
        return m * 255
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    signed = np.where(m > 0, inside - 0.5, 0.5 - outside)
    a = np.clip(0.5 + signed / feather, 0.0, 1.0)
    a[m == 0] = np.minimum(a[m == 0], 0.49)
    return np.round(a * 255).astype(np.uint8)


def _nucleus_score(lab: np.ndarray) -> np.ndarray:
    """High on stained nuclei: dark (low L) and blue-violet (low b)."""
    L, b = lab[..., 0], lab[..., 2]
    return (255.0 - L) + 2.0 * (128.0 - b)


def segment_cell(
    rgb: np.ndarray,
    center: tuple[float, float] | None = None,
    feather: float = 1.5,
    iterations: int = 4,
    cls: str | None = None,
) -> Segmentation:
    """Segment the nucleated cell at ``center`` of an RGB crop.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
    center : (row, col), optional
        Where the cell of interest is; the crop centre by default.
    feather : float
        Width of the alpha ramp in pixels.
    iterations : int
        GrabCut iterations (of each of the two GrabCut passes).
    cls : str, optional
        The cell's pool class, when known: small lymphocytes (:data:`THIN_RIM`) keep red-cell
        coloured pixels out of their cytoplasm.

    Returns
    -------
    Segmentation
        An empty mask if no stained nucleus is found.
    """
    rgb, h, w, center, lab = _prepare(rgb, center)
    score = _nucleus_score(lab)
    _, thr = _otsu3(score)
    stained = score > thr
    stained = cv2.morphologyEx(stained.astype(np.uint8), cv2.MORPH_OPEN, _disk(1)) > 0
    empty = np.zeros((h, w), bool)
    if not stained.any():
        return Segmentation(empty, np.zeros((h, w), np.uint8), empty, 0)
    nucleus = _nucleus_near(stained, center)
    if not nucleus.any():
        return Segmentation(empty, np.zeros((h, w), np.uint8), empty, 0)
    mask = _grow_cell(rgb, lab, nucleus, stained, iterations, cls in THIN_RIM)
    nucleus = nucleus & mask
    n_nuclei = _count_nuclei(stained & mask, nucleus)
    return Segmentation(mask, soft_alpha(mask, feather), nucleus, n_nuclei)


def _nucleus_near(stained: np.ndarray, center: tuple[float, float]) -> np.ndarray:
    """The stained component nearest the centre plus the lobes close to it."""
    n, lab, stats, cents = cv2.connectedComponentsWithStats(stained.astype(np.uint8), 8)
    if n <= 1:
        return np.zeros_like(stained)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
    big = areas >= 0.05 * areas.max()
    dist = np.hypot(cents[1:, 0] - center[1], cents[1:, 1] - center[0])
    # prefer large components near the centre
    cost = dist / np.sqrt(areas) - 1e-9 * areas
    cost[~big] = np.inf
    k0 = int(np.argmin(cost))
    seed = lab == (k0 + 1)
    r_seed = np.sqrt(areas[k0] / np.pi)
    # join lobes: components whose nearest pixel lies within ~0.6 nucleus radius of the seed
    near = cv2.dilate(seed.astype(np.uint8), _disk(max(2.0, 0.6 * r_seed))) > 0
    keep = np.unique(lab[near & (lab > 0)])
    keep = [k for k in keep if big[k - 1] or areas[k - 1] >= 0.02 * areas.max()]
    return np.isin(lab, keep)


def _count_nuclei(stained_in_mask: np.ndarray, nucleus: np.ndarray) -> int:
    """Nucleus-sized stained components in the mask that are not part of the seed nucleus."""
    other = stained_in_mask & ~(cv2.dilate(nucleus.astype(np.uint8), _disk(3)) > 0)
    _, _, stats, _ = cv2.connectedComponentsWithStats(other.astype(np.uint8), 8)
    big = np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] >= 0.3 * max(1, nucleus.sum()))
    return 1 + int(big)


#: the cell is looked for within this many nucleus radii of the nucleus; beyond it every
#: pixel is background
MAX_REACH = 4.0
#: half-width of the band, in nucleus radii, in which the final GrabCut moves the mask's edge
EDGE_BAND = 0.2
#: sure cytoplasm (the classifier's positive examples): the ring this far from the nucleus,
#: in nucleus radii or pixels, whichever is larger; inner and outer edge
RING = ((0.06, 3.0), (0.2, 8.0))
#: sure background (negative examples): plasma beyond ``NEG_PLASMA`` nucleus radii, anything
#: beyond ``NEG_FAR`` radii, and the crop's border band (this fraction of its shorter side)
#: beyond ``NEG_BORDER_MIN`` radii
NEG_PLASMA = 1.5
NEG_FAR = 2.0
NEG_BORDER = 0.08
NEG_BORDER_MIN = 0.5
#: a pixel is plasma if its Lab distance to the plasma colour is under this multiple of the
#: median distance over the crop's brightest fifth
PLASMA_SPREAD = 2.0
#: examples per class (the negatives half plasma, half the rest), hidden units, iterations
N_EXAMPLES = 1000
HIDDEN = 8
FIT_STEPS = 200
#: window (Gaussian sigma, px) of the texture features; wider windows make the cell's edge
#: texture bleed outwards into a halo of "cell" pixels over the plasma
TEXTURE_SIGMA = 2.0
#: outside the ring, the cell's log-odds fall by ``PRIOR_SLOPE`` per nucleus radius beyond
#: ``PRIOR_START`` radii from the nucleus
PRIOR_START = 1.0
PRIOR_SLOPE = 3.0
#: cells with a thin rim of blue (basophilic) cytoplasm, never red-cell coloured: small
#: lymphocytes. Red cells touch their nucleus, so the sure-cytoplasm ring holds red-cell pixels
#: and the classifier learned red cells as cell. For them, pixels whose chroma (a*, b*) is
#: within the ``RBC_QUANTILE`` of the chroma spread of the unstained, non-plasma pixels beyond
#: the ring (mostly red cells: the cytoplasm is thin) leave the ring and count as background,
#: as long as at least ``RING_KEEP`` of the ring stays. Not for cells with wide cytoplasm
#: (monocytes: their cytoplasm lies beyond the ring) nor granulocytes (red-cell coloured
#: granules).
THIN_RIM = frozenset({"Lymphocyte", "Atypical lymphocyte"})
RBC_QUANTILE = 0.6
RING_KEEP = 0.3


def _nucleus_distance(nucleus: np.ndarray) -> np.ndarray:
    """Each pixel's distance (px) to the nucleus, float32 (0 on it)."""
    return cv2.distanceTransform((~nucleus).astype(np.uint8), cv2.DIST_L2, 3)


def _masked_std(x: np.ndarray, keep: np.ndarray, sigma: float) -> np.ndarray:
    """Local standard deviation of ``x`` over the pixels where ``keep`` is 1 (Gaussian window)."""
    wsum = np.maximum(cv2.GaussianBlur(keep, (0, 0), sigma), 1e-3)
    m = cv2.GaussianBlur(x * keep, (0, 0), sigma) / wsum
    m2 = cv2.GaussianBlur(x * x * keep, (0, 0), sigma) / wsum
    return np.sqrt(np.maximum(m2 - m * m, 0.0))


def _pixel_features(lab: np.ndarray, stained: np.ndarray, plasma: np.ndarray) -> np.ndarray:
    """Per-pixel colour and texture: Lab relative to ``plasma`` (its Lab colour), local std of
    ``L`` and ``b``.

    The local std leaves out the stained pixels (and 2 px around them), so that the ring
    next to the nucleus does not take the nucleus's edge for a texture of the cytoplasm.

    Returns
    -------
    ndarray of shape (H, W, 5), float32
    """
    d = (lab - plasma) / np.array([50.0, 10.0, 10.0], np.float32)
    keep = (cv2.dilate(stained.astype(np.uint8), _disk(2)) == 0).astype(np.float32)
    std_l = _masked_std(np.ascontiguousarray(lab[..., 0]), keep, TEXTURE_SIGMA) / 10
    std_b = _masked_std(np.ascontiguousarray(lab[..., 2]), keep, TEXTURE_SIGMA) / 5
    return np.concatenate([d, std_l[..., None], std_b[..., None]], -1).astype(np.float32)


def _pseudo_labels(
    lab: np.ndarray, stained: np.ndarray, d_px: np.ndarray, r_nuc: float, plasma_lab: np.ndarray,
    thin_rim: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of the crop that are surely cell or surely background, from geometry and colour.

    ``d_px`` is each pixel's distance to the nucleus (px), ``r_nuc`` the nucleus radius and
    ``plasma_lab`` the plasma's Lab colour.

    Sure cell: a ring just outside the nucleus (not plasma-coloured, not stained; for
    ``thin_rim`` cells not red-cell coloured either, see :data:`THIN_RIM`). Sure
    background: plasma-coloured pixels away from the nucleus, other stained bodies, pixels far
    from the nucleus, and the crop's border band (the crop is framed around the cell).

    Returns
    -------
    cell, plasma, other : ndarray of shape (H, W), bool
        Sure cell; sure background that is plasma-coloured; the rest of the sure background.
    """
    h, w = d_px.shape
    dn = d_px / r_nuc
    dist = np.sqrt(((lab - plasma_lab) ** 2).sum(-1))
    L = lab[..., 0]
    plasma = dist < PLASMA_SPREAD * np.median(dist[L >= np.percentile(L, 80)])
    (f0, p0), (f1, p1) = RING
    ring = (d_px >= max(p0, f0 * r_nuc)) & (d_px <= max(p1, f1 * r_nuc)) & ~stained
    others = stained & (d_px > 1.2 * r_nuc)
    yy, xx = np.mgrid[0:h, 0:w]
    edge = np.minimum(np.minimum(yy, h - 1 - yy), np.minimum(xx, w - 1 - xx))
    far = (dn > NEG_FAR) | ((edge < NEG_BORDER * min(h, w)) & (dn > NEG_BORDER_MIN))
    background = ((plasma & (dn > NEG_PLASMA)) | others | far) & ~ring
    ring &= ~plasma
    outer = (d_px > max(p1, f1 * r_nuc)) & ~plasma & ~stained if thin_rim else None
    if outer is not None and outer.sum() >= 50 and ring.any():
        ab = lab[..., 1:]
        ref = np.median(ab[outer], axis=0)
        d_ref = np.sqrt(((ab - ref) ** 2).sum(-1))
        rbc_like = (d_ref < np.quantile(d_ref[outer], RBC_QUANTILE)) & ~plasma & ~stained
        if (ring & ~rbc_like).sum() >= RING_KEEP * ring.sum():
            ring &= ~rbc_like
            background |= rbc_like & outer
    return ring, background & plasma, background & ~plasma


def _spread(mask: np.ndarray, n: int) -> np.ndarray:
    """Flat indices of at most ``n`` pixels of ``mask``, evenly spaced in raster order."""
    idx = np.flatnonzero(mask.ravel())
    return idx[np.linspace(0, len(idx) - 1, min(len(idx), n)).astype(int)]


def _fit_mlp(x: np.ndarray, y: np.ndarray, hidden: int, steps: int, lr: float = 0.05):
    """A one-hidden-layer tanh perceptron fitted by class-balanced logistic loss (Adam).

    Deterministic: fixed initial weights (seeded), full-batch steps.

    Returns
    -------
    list of ndarray
        ``W1`` (d, hidden), ``b1`` (hidden,), ``W2`` (hidden,), ``b2`` (scalar array).
    """
    rng = np.random.default_rng(0)
    n, d = x.shape
    params = [
        rng.normal(0, 1 / np.sqrt(d), (d, hidden)).astype(np.float32),
        np.zeros(hidden, np.float32),
        rng.normal(0, 1 / np.sqrt(hidden), hidden).astype(np.float32),
        np.zeros((), np.float32),
    ]
    pos = y.mean()
    weight = (np.where(y > 0, 0.5 / pos, 0.5 / (1 - pos)) / n).astype(np.float32)
    moments = [(np.zeros_like(q), np.zeros_like(q)) for q in params]
    for t in range(1, steps + 1):
        w1, b1, w2, b2 = params
        hid = np.tanh(x @ w1 + b1)
        p = 1 / (1 + np.exp(-np.clip(hid @ w2 + b2, -30, 30)))
        gz = weight * (p - y)
        gh = np.outer(gz, w2) * (1 - hid**2)
        grads = [x.T @ gh + 1e-3 * w1, gh.sum(0), hid.T @ gz + 1e-3 * w2, gz.sum()]
        for i, g in enumerate(grads):
            params[i], moments[i] = _adam_step(params[i], g, moments[i], t, lr)
    return params


def _adam_step(param, grad, moments, t, lr, beta1=0.9, beta2=0.999):
    """One Adam update of ``param``; returns it and the new (first, second) moments."""
    m = beta1 * moments[0] + (1 - beta1) * grad
    v = beta2 * moments[1] + (1 - beta2) * grad * grad
    step = (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + 1e-8)
    return (param - lr * step).astype(np.float32), (m, v)


def _cell_probability(
    lab: np.ndarray, nucleus: np.ndarray, stained: np.ndarray, d_px: np.ndarray,
    thin_rim: bool = False,
) -> np.ndarray:
    """Probability that each pixel belongs to the cell, from a classifier fitted on this crop.

    ``d_px`` is each pixel's distance to the nucleus in pixels.

    A small perceptron on :func:`_pixel_features` is fitted to the crop's own
    :func:`_pseudo_labels` (nothing is learned across crops); its log-odds, less a prior that
    falls with the distance from the nucleus, give the probability. Zero beyond
    :data:`MAX_REACH` nucleus radii.
    """
    r_nuc = max(np.sqrt(float(nucleus.sum()) / np.pi), 3.0)
    dn = d_px / r_nuc
    plasma_lab = _plasma_lab(lab)
    cell, plasma, other = _pseudo_labels(lab, stained, d_px, r_nuc, plasma_lab, thin_rim)
    if cell.sum() < 20 or (plasma | other).sum() < 20:
        # too little to learn from: let GrabCut decide on the colours near the nucleus
        p = np.where(dn < 0.5, 0.6, 0.3).astype(np.float32)
    else:
        feats = _pixel_features(lab, stained, plasma_lab).reshape(-1, 5)
        half = N_EXAMPLES // 2
        idx = np.concatenate([_spread(cell, N_EXAMPLES), _spread(plasma, half),
                              _spread(other, half)])
        x = feats[idx]
        y = (np.arange(len(idx)) < min(int(cell.sum()), N_EXAMPLES)).astype(np.float32)
        mu, sd = x.mean(0), x.std(0) + 1e-3
        w1, b1, w2, b2 = _fit_mlp((x - mu) / sd, y, HIDDEN, FIT_STEPS)
        z = np.tanh(((feats - mu) / sd) @ w1 + b1) @ w2 + b2
        z = z.reshape(dn.shape) - PRIOR_SLOPE * np.maximum(dn - PRIOR_START, 0)
        p = (1 / (1 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)
    p[dn >= MAX_REACH] = 0.0
    return p


def _grow_cell(
    rgb: np.ndarray,
    lab: np.ndarray,
    nucleus: np.ndarray,
    stained: np.ndarray,
    iterations: int,
    thin_rim: bool = False,
) -> np.ndarray:
    """Cell probability, GrabCut on it, cleanup, then an edge refinement on the colours."""
    d_px = _nucleus_distance(nucleus)
    p = _cell_probability(lab, nucleus, stained, d_px, thin_rim)
    r_nuc = np.sqrt(float(nucleus.sum()) / np.pi)
    gc = np.full(p.shape, cv2.GC_PR_BGD, np.uint8)
    gc[p > 0.5] = cv2.GC_PR_FGD
    gc[p < 0.05] = cv2.GC_BGD
    gc[stained & (d_px > max(1.2 * r_nuc, 6.0))] = cv2.GC_BGD
    pc = np.clip(p * 255, 0, 255).astype(np.uint8)
    # GrabCut sees the probability next to two colour channels (its GMMs and edge weights)
    fg = _grabcut(np.dstack([pc, rgb[..., 1], rgb[..., 2]]), gc, nucleus, iterations)
    fg = _fill_holes(fg)
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, _disk(max(2.0, 0.15 * r_nuc))) > 0
    cell = _component_at(fg | nucleus, _centroid(nucleus))
    cell = _fill_holes(cell | nucleus) if cell.any() else nucleus.copy()
    return _refine_edge(rgb, cell, nucleus, max(2.0, EDGE_BAND * r_nuc), iterations)


def _refine_edge(
    rgb: np.ndarray, cell: np.ndarray, nucleus: np.ndarray, band: float, iterations: int
) -> np.ndarray:
    """Move the mask's edge to the colour edge within ``band`` pixels (GrabCut on RGB)."""
    c8 = cell.astype(np.uint8)
    gc = np.full(cell.shape, cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(c8, _disk(band)) > 0] = cv2.GC_PR_BGD
    gc[cell] = cv2.GC_PR_FGD
    gc[(cv2.erode(c8, _disk(band)) > 0) | nucleus] = cv2.GC_FGD
    fg = _grabcut(rgb, gc, nucleus, iterations)
    fg = _component_at(fg | nucleus, _centroid(nucleus))
    return _fill_holes(fg | nucleus)


def _grabcut(img: np.ndarray, gc: np.ndarray, nucleus: np.ndarray, iterations: int) -> np.ndarray:
    """GrabCut of a 3-channel uint8 image from a seed mask; the nucleus is sure cell."""
    gc = gc.copy()
    core = cv2.erode(nucleus.astype(np.uint8), _disk(1)) > 0
    gc[core if core.any() else nucleus] = cv2.GC_FGD
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    # GrabCut seeds its GMMs with k-means on OpenCV's global RNG: fix it, so that a crop
    # always gets the same mask (reproducible pools, whatever ran before)
    cv2.setRNGSeed(0x5EED)
    try:
        cv2.grabCut(
            np.ascontiguousarray(img[..., ::-1]), gc, None, bgd, fgd, max(1, iterations),
            cv2.GC_INIT_WITH_MASK,
        )
    except cv2.error:
        return nucleus.copy()
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(ys.mean()), float(xs.mean())


def segment_blob(
    rgb: np.ndarray,
    center: tuple[float, float] | None = None,
    feather: float = 1.5,
    background: np.ndarray | None = None,
) -> Segmentation:
    """Segment the anucleate cell (red cell, platelet) at ``center`` of an RGB crop.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
    center : (row, col), optional
        The crop centre by default.
    feather : float
        Width of the alpha ramp in pixels.
    background : ndarray of shape (3,), optional
        The plasma colour (RGB); estimated from the crop's brightest pixels when omitted.

    Returns
    -------
    Segmentation
    """
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    if center is None:
        center = ((h - 1) / 2, (w - 1) / 2)
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (0, 0), 1.0), cv2.COLOR_RGB2LAB).astype(np.float32)
    if background is None:
        bg = _plasma_lab(lab)
    else:
        bg = cv2.cvtColor(np.asarray(background, np.uint8).reshape(1, 1, 3),
                          cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]
    dist = np.sqrt(((lab - bg) ** 2).sum(-1))
    thr = max(_otsu(dist), 6.0)
    fg = dist > thr
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, _disk(1)) > 0
    fg = _fill_holes(fg)
    empty = np.zeros((h, w), bool)
    if not fg.any():
        return Segmentation(empty, np.zeros((h, w), np.uint8), empty, 0)
    fg = _split_touching(fg, center)
    cell = _component_at(fg, center)
    return Segmentation(cell, soft_alpha(cell, feather), empty, 0)


def segment_stained(
    rgb: np.ndarray,
    center: tuple[float, float] | None = None,
    feather: float = 1.0,
) -> Segmentation:
    """Segment the small stained body (a platelet) nearest ``center`` of an RGB crop.

    The stained pixels are the top class of a three-level Otsu split of the nucleus score;
    the component nearest the centre (by distance over the square root of its area) is
    closed, filled, and grown by one pixel to include its pale rim.
    """
    rgb, h, w, center, lab = _prepare(rgb, center)
    score = _nucleus_score(lab)
    lo, hi = _otsu3(score)
    stained = score > (lo + hi) / 2
    stained = cv2.morphologyEx(stained.astype(np.uint8), cv2.MORPH_CLOSE, _disk(2)) > 0
    empty = np.zeros((h, w), bool)
    if not stained.any():
        return Segmentation(empty, np.zeros((h, w), np.uint8), empty, 0)
    _, lbl, stats, cents = cv2.connectedComponentsWithStats(stained.astype(np.uint8), 8)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
    dist = np.hypot(cents[1:, 0] - center[1], cents[1:, 1] - center[0])
    cost = np.where(areas >= 12, dist / np.sqrt(areas), np.inf)
    if not np.isfinite(cost).any():
        return Segmentation(empty, np.zeros((h, w), np.uint8), empty, 0)
    cell = _fill_holes(lbl == 1 + int(np.argmin(cost)))
    cell = cv2.dilate(cell.astype(np.uint8), _disk(1)) > 0
    return Segmentation(cell, soft_alpha(cell, feather), empty, 0)


def _plasma_lab(lab: np.ndarray) -> np.ndarray:
    """Median Lab colour of the brightest fifth of the crop (the plasma)."""
    L = lab[..., 0]
    sel = L >= np.percentile(L, 80)
    return np.median(lab[sel], axis=0)


def _split_touching(fg: np.ndarray, center: tuple[float, float]) -> np.ndarray:
    """Cut touching blobs apart along watershed lines of the distance transform."""
    d = cv2.distanceTransform(fg.astype(np.uint8), cv2.DIST_L2, 5)
    if d.max() < 3:
        return fg
    peaks = (d >= 0.6 * cv2.dilate(d, _disk(max(2.0, 0.5 * d.max())))) & (d > 0.35 * d.max())
    n, markers = cv2.connectedComponents(peaks.astype(np.uint8))
    if n <= 2:
        return fg
    markers = markers.astype(np.int32)
    markers[~fg] = n  # background label
    relief = cv2.cvtColor(
        (255 * (1 - d / d.max())).astype(np.uint8), cv2.COLOR_GRAY2BGR
    )
    cv2.watershed(relief, markers)
    out = fg & (markers > 0) & (markers < n)
    return out


def cutout(
    rgb: np.ndarray, seg: Segmentation, pad: int = 2
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crop an RGBA sprite around a segmentation.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
    seg : Segmentation
    pad : int
        Transparent margin kept around the alpha (clipped at the crop edge).

    Returns
    -------
    rgba : ndarray of shape (h, w, 4), uint8
    box : (x0, y0, x1, y1)
        Where the sprite was cut from, in the crop's pixels.
    """
    ys, xs = np.nonzero(seg.alpha)
    h, w = seg.alpha.shape
    x0, y0 = max(0, int(xs.min()) - pad), max(0, int(ys.min()) - pad)
    x1, y1 = min(w, int(xs.max()) + 1 + pad), min(h, int(ys.max()) + 1 + pad)
    rgba = np.dstack([rgb[y0:y1, x0:x1, :3], seg.alpha[y0:y1, x0:x1]])
    return np.ascontiguousarray(rgba), (x0, y0, x1, y1)
