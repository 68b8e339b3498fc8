"""Procedural cell renderers: the built-in cell atlas, one function per class.

Every renderer has the signature ``render(rng, um_per_px) -> rgba`` and draws one varied cell
of its class as a straight RGBA uint8 sprite of shape (H, W, 4), alpha = 0 outside the cell.
Sizes are in micrometres (:data:`SIZE_UM`), so a renderer draws the same cell at any scale.

Cells are painted in *stain amounts* (red-cell, nucleus and basophilic-blue dye, see
:mod:`hemosynth.smear.stain`) and converted to RGB with the ``pbc`` stain profile; the renderer
re-stains them per smear. Shapes are signed distance fields in micrometres, so edges are
anti-aliased at every scale.

:data:`RENDERERS` maps each of the 18 pool classes to its renderer; a new look is one function
and one entry.

Examples
--------
>>> import numpy as np
>>> rgba = render_cell("Lymphocyte", np.random.default_rng(0), 0.1)
>>> rgba.dtype, rgba.shape[2]
(dtype('uint8'), 4)
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..errors import ConfigError
from ..smear.stain import PROFILES, od_to_rgb, rgb_to_amounts
from ..taxonomy import canonical_class

#: the profile cells are painted in
_PROFILE = PROFILES["pbc"]

#: class -> (min, max) equivalent-circle diameter in micrometres
SIZE_UM: dict[str, tuple[float, float]] = {
    "RBC": (7.0, 8.0),
    "Nucleated RBC": (8.0, 12.0),
    "Platelet": (2.0, 4.0),  # see platelet(): measured on PBC fields, not the class crops
    "Giant platelet": (7.0, 10.0),
    "Activated platelet": (3.0, 5.0),
    "Segmented neutrophil": (10.0, 14.0),
    "Band cell": (10.0, 14.0),
    "Hypersegmented neutrophil": (12.0, 17.0),
    "Hyposegmented neutrophil": (10.0, 14.0),
    "Eosinophil": (12.0, 17.0),
    "Basophil": (10.0, 14.0),
    "Lymphocyte": (7.0, 10.0),
    "Reactive lymphocyte": (10.0, 20.0),
    "Atypical lymphocyte": (10.0, 20.0),
    "Monocyte": (12.0, 20.0),
    "Atypical monocyte": (15.0, 25.0),
    "Plasma cell": (8.0, 20.0),
    "Basket cell": (10.0, 20.0),
}


def _pig(*rgb: float) -> np.ndarray:
    """Stain amounts of a colour as seen in the PBC images."""
    return rgb_to_amounts(np.asarray(rgb, np.float32), _PROFILE).astype(np.float32)


#: pigments: stain amounts of the colours of cell parts in PBC images
PIG = {
    "rbc": _pig(208, 166, 169),  # a little greyer than the profile's red cell (PBC fields)
    "nucleus": _pig(85, 35, 137),
    "nucleus_lacy": _pig(96, 48, 146),
    "neut_cyto": _pig(218, 182, 194),
    "neut_granule": _pig(200, 160, 196),
    "eos_granule": _pig(205, 100, 140),
    "eos_cyto": _pig(210, 148, 170),
    "baso_granule": _pig(70, 25, 110),
    "lymph_cyto": _pig(170, 152, 200),
    "deep_blue": _pig(128, 128, 192),
    "mono_cyto": _pig(182, 162, 204),
    "plt_granule": _pig(125, 60, 145),
    "plt_rim": _pig(214, 192, 202),
    "nrbc_blue": _pig(165, 140, 190),
    "smudge": _pig(128, 80, 164),
}


# --------------------------------------------------------------------------- canvas + shapes
class _Cell:
    """A square painting area of ``extent_um`` with coordinates in micrometres (centre 0)."""

    def __init__(self, extent_um: float, um_per_px: float) -> None:
        self.um = float(um_per_px)
        n = int(np.ceil(extent_um / self.um)) + 4
        c = (np.arange(n, dtype=np.float32) - (n - 1) / 2.0) * self.um
        self.x, self.y = np.meshgrid(c, c)
        self.shape = (n, n)
        self.alpha = np.zeros(self.shape, np.float32)
        self.amt = np.zeros((*self.shape, 3), np.float32)

    def soft(self, sd: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage of a signed distance field (um, negative inside)."""
        return np.clip(0.5 - sd / self.um, 0.0, 1.0)

    def over(self, cover: np.ndarray, amounts: np.ndarray) -> None:
        """Paint ``amounts`` (3,) or (H, W, 3) over the current paint with coverage ``cover``."""
        c = cover[:, :, None]
        self.amt = self.amt * (1.0 - c) + c * amounts

    def add(self, cover: np.ndarray, amounts: np.ndarray) -> None:
        """Add dye ``amounts`` weighted by ``cover`` (granules, texture)."""
        self.amt = self.amt + cover[:, :, None] * amounts

    def finish(self, blur_um: float = 0.06) -> np.ndarray:
        """RGBA uint8 sprite: the paint converted to RGB, alpha = body coverage."""
        sigma = blur_um / self.um
        amt = self.amt
        if sigma > 0.3:
            amt = cv2.GaussianBlur(amt, (0, 0), sigma)
        # Pigments outside the three dyes' cone (orange eosinophil granules) have negative
        # amounts; keep them, and clip only the optical density (never brighter than plasma).
        od = np.maximum(amt @ _PROFILE.basis.astype(np.float32), 0.0)
        rgb = np.clip(od_to_rgb(od, _PROFILE.illuminant) + 0.5, 0, 255).astype(np.uint8)
        a = np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        rgba = np.dstack([rgb, a])
        rgba[a == 0] = 0
        return _crop(rgba)


def _crop(rgba: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(rgba[:, :, 3])
    if ys.size == 0:
        raise RuntimeError("a procedural cell came out empty")
    return np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def _window(cell: _Cell, cx: float, cy: float, reach: float) -> tuple[slice, slice]:
    """Pixel rows and columns within ``reach`` um of (cx, cy) (a square window)."""
    x0, n = float(cell.x[0, 0]), cell.shape[0]
    c0 = max(0, int((cx - reach - x0) / cell.um))
    c1 = min(n, int((cx + reach - x0) / cell.um) + 2)
    r0 = max(0, int((cy - reach - x0) / cell.um))
    r1 = min(n, int((cy + reach - x0) / cell.um) + 2)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _polar_sd(
    cell: _Cell, cx: float, cy: float, r: float, rng: np.random.Generator,
    wobble: float, harmonics: int = 5, ratio: float = 1.0, angle: float = 0.0,
) -> np.ndarray:
    """Signed distance (approx.) of a wobbly ellipse of mean radius ``r`` centred at (cx, cy).

    Evaluated in a window round the shape; +inf outside it.
    """
    ca, sa = np.cos(angle), np.sin(angle)
    a, b = r / np.sqrt(ratio), r * np.sqrt(ratio)
    amps = [wobble * rng.normal() / k for k in range(2, 2 + harmonics)]
    phases = [rng.uniform(0, 2 * np.pi) for _ in range(harmonics)]
    reach = max(a, b) * (1.0 + sum(abs(v) for v in amps)) + 3 * cell.um
    rows, cols = _window(cell, cx, cy, reach)
    x, y = cell.x[rows, cols] - cx, cell.y[rows, cols] - cy
    u = x * ca + y * sa
    v = -x * sa + y * ca
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    theta = np.arctan2(v, u)
    edge = np.ones_like(theta)
    for k, (amp, ph) in enumerate(zip(amps, phases, strict=True), start=2):
        edge += amp * np.cos(k * theta + ph)
    out = np.full(cell.shape, np.inf, np.float32)
    out[rows, cols] = (rho - edge) * min(a, b)
    return out


def _capsule_sd(cell: _Cell, p0, p1, r: float) -> np.ndarray:
    """Signed distance of a capsule (segment p0-p1 with radius r)."""
    px, py = cell.x - p0[0], cell.y - p0[1]
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    den = dx * dx + dy * dy
    t = np.clip((px * dx + py * dy) / den, 0, 1) if den > 1e-9 else 0.0
    return np.hypot(px - t * dx, py - t * dy) - r


def _polyline_sd(cell: _Cell, pts: np.ndarray, r: float | np.ndarray) -> np.ndarray:
    """Union of capsules along a polyline; ``r`` per segment or scalar.

    Each capsule is evaluated only in its bounding window (inf elsewhere), which keeps long
    polylines cheap.
    """
    rs = np.broadcast_to(np.asarray(r, np.float32), (len(pts) - 1,))
    sd = np.full(cell.shape, np.inf, np.float32)
    for i in range(len(pts) - 1):
        (ax, ay), (bx, by), rr = pts[i], pts[i + 1], float(rs[i])
        half = np.hypot(bx - ax, by - ay) / 2 + rr + 2 * cell.um
        rows, cols = _window(cell, (ax + bx) / 2, (ay + by) / 2, half)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
        px, py = cell.x[r0:r1, c0:c1] - ax, cell.y[r0:r1, c0:c1] - ay
        dx, dy = bx - ax, by - ay
        den = dx * dx + dy * dy
        t = np.clip((px * dx + py * dy) / den, 0, 1) if den > 1e-9 else 0.0
        win = sd[r0:r1, c0:c1]
        np.minimum(win, np.hypot(px - t * dx, py - t * dy) - rr, out=win)
    return sd


def _noise(cell: _Cell, rng: np.random.Generator, scale_um: float) -> np.ndarray:
    """Smooth noise with features of about ``scale_um``, zero mean, unit sd."""
    n = cell.shape[0]
    g = max(2, int(np.ceil(n * cell.um / scale_um)) + 1)
    low = rng.standard_normal((g, g)).astype(np.float32)
    f = cv2.resize(low, (n, n), interpolation=cv2.INTER_CUBIC)
    return (f - f.mean()) / (f.std() + 1e-6)


def _dots(
    cell: _Cell, rng: np.random.Generator, where: np.ndarray, count: int,
    radius_um: tuple[float, float],
) -> np.ndarray:
    """``count`` round soft dots (peak about 1) centred at random pixels where ``where`` > 0.5."""
    out = np.zeros(cell.shape, np.float32)
    ys, xs = np.nonzero(where > 0.5)
    if count <= 0 or ys.size == 0:
        return out
    pick = rng.integers(0, ys.size, count)
    radii = rng.uniform(*radius_um, count) / cell.um
    for y, x, rr in zip(ys[pick], xs[pick], radii, strict=True):
        cv2.circle(out, (int(x) * 4, int(y) * 4), max(1, int(rr * 4)), 1.0, -1, cv2.LINE_AA, 2)
    sigma = max(0.5, 0.35 * float(np.mean(radius_um)) / cell.um)
    return np.minimum(cv2.GaussianBlur(out, (0, 0), sigma), 1.2)


def _distance_inside(cover: np.ndarray, um: float) -> np.ndarray:
    """Distance (um) from each inside pixel to the outline of ``cover`` > 0.5."""
    m = (cover > 0.5).astype(np.uint8)
    m = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.distanceTransform(m, cv2.DIST_L2, 5)[1:-1, 1:-1] * um


def _diameter(rng: np.random.Generator, cls: str, lo: float = 0.0, hi: float = 1.0) -> float:
    """A diameter from the class range, drawn from the sub-interval [lo, hi] (fractions)."""
    a, b = SIZE_UM[cls]
    return float(a + (b - a) * rng.uniform(lo, hi))


# --------------------------------------------------------------------------- nuclei
def _chromatin(
    cell: _Cell, rng: np.random.Generator, cover: np.ndarray, density: float,
    coarse: float, pigment: str = "nucleus", clump_um: float = 0.7,
) -> None:
    """Paint a nucleus with clumped chromatin: ``coarse`` 0 (fine, lacy) to 1 (very clumped)."""
    tex = 1.0 + 0.10 * _noise(cell, rng, 0.35) + coarse * 0.22 * _noise(cell, rng, clump_um)
    rim = np.exp(-_distance_inside(cover, cell.um) / 0.35)  # chromatin condensed at the rim
    dens = density * np.clip(tex + 0.12 * rim, 0.45, 1.6)
    cell.over(cover * 0.97, dens[:, :, None] * PIG[pigment])


def _lobe_chain(
    rng: np.random.Generator, n: int, step: float, turn: float, reach: float
) -> np.ndarray:
    """Centres (n, 2) of lobes along a random curved path, centred and fitted within ``reach``."""
    pts = [np.zeros(2)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(n - 1):
        heading += rng.uniform(-turn, turn)
        pts.append(pts[-1] + step * rng.uniform(0.85, 1.15) * np.array(
            [np.cos(heading), np.sin(heading)]))
    p = np.array(pts)
    p -= p.mean(axis=0)
    far = np.hypot(p[:, 0], p[:, 1]).max()
    if far > reach:
        p *= reach / far
    return p


def _lobed_nucleus(
    cell: _Cell, rng: np.random.Generator, d: float, n: int, lobe: float, strand: float,
    reach: float,
) -> np.ndarray:
    """Signed distance of ``n`` lobes of radius ``lobe`` joined by strands of radius ``strand``.

    Lobe centres are 2.6 lobe radii apart along the chain, so neighbouring lobes are separate
    and joined only by their strand. A chain reaching beyond ``reach`` is shrunk, lobes
    included (to 75 % at most). Of a few random chains, the least shrunk one whose
    non-neighbouring lobes stay 3 radii apart is kept (a curled chain would fuse them).
    """
    best, best_key = None, (False, -np.inf)
    for _ in range(8 if n > 2 else 1):
        centres = _lobe_chain(rng, n, lobe * 2.6, 1.4, np.inf)
        far = float(np.hypot(centres[:, 0], centres[:, 1]).max())
        f = max(0.75, min(1.0, reach / far)) if far > 0 else 1.0
        gap = min((float(np.hypot(*(centres[i] - centres[j]))) / lobe
                   for i in range(n) for j in range(i + 2, n)), default=np.inf)
        key = (gap >= 3.0, f if gap >= 3.0 else gap)  # separate first, then least shrunk
        if key > best_key:
            best, best_key = (centres * f, f), key
    centres, f = best
    r_lobe = lobe * f
    sd = _polyline_sd(cell, centres, strand) if n > 1 else np.full(cell.shape, np.inf)
    for cx, cy in centres:
        r = r_lobe * rng.uniform(0.85, 1.1)
        sd = np.minimum(sd, _polar_sd(cell, cx, cy, r, rng, 0.06, 3, rng.uniform(0.7, 0.95),
                                      rng.uniform(0, np.pi)))
    return sd


def _arc_points(cx: float, cy: float, radius: float, a0: float, span: float, k: int = 14):
    t = a0 + np.linspace(0.0, span, k)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def _band_nucleus(cell: _Cell, rng: np.random.Generator, d: float) -> np.ndarray:
    """A C- or U-shaped band of even width."""
    radius = d * rng.uniform(0.19, 0.24)
    span = np.deg2rad(rng.uniform(180, 280))
    pts = _arc_points(0.0, 0.0, radius, rng.uniform(0, 2 * np.pi), span)
    if rng.random() < 0.4:  # U shape: straighten the arms
        pts = _u_shape(pts, rng)
    pts -= pts.mean(axis=0) * rng.uniform(0.5, 1.0)
    return _polyline_sd(cell, pts, d * rng.uniform(0.07, 0.085))


def _u_shape(pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = len(pts)
    arm = rng.uniform(0.2, 0.5) * np.hypot(*(pts[0] - pts[k // 2]))
    d0 = pts[0] - pts[1]
    d1 = pts[-1] - pts[-2]
    head = pts[0] + d0 / (np.hypot(*d0) + 1e-9) * arm
    tail = pts[-1] + d1 / (np.hypot(*d1) + 1e-9) * arm
    return np.vstack([head, pts, tail])


def _kidney_nucleus(cell: _Cell, rng: np.random.Generator, d: float) -> np.ndarray:
    """Kidney, horseshoe or folded nucleus of a monocyte."""
    kind = rng.choice(["kidney", "horseshoe", "folded"], p=[0.45, 0.3, 0.25])
    r = d * rng.uniform(0.27, 0.33)
    off = rng.uniform(-0.08, 0.08, 2) * d
    ang = rng.uniform(0, 2 * np.pi)
    if kind == "horseshoe":
        pts = _arc_points(off[0], off[1], r * 0.72, ang, np.deg2rad(rng.uniform(200, 260)))
        return _polyline_sd(cell, pts, r * rng.uniform(0.32, 0.42))
    sd = _polar_sd(cell, off[0], off[1], r, rng, 0.08, 4, rng.uniform(0.6, 0.85), ang)
    if kind == "kidney":
        nx, ny = off[0] + np.cos(ang + np.pi / 2) * r * 1.25, off[1] + np.sin(ang + np.pi / 2) * r
        notch = np.hypot(cell.x - nx, cell.y - ny) - r * rng.uniform(0.45, 0.65)
        return np.maximum(sd, -notch)
    lobe = _polar_sd(cell, off[0] + np.cos(ang) * r * 0.6, off[1] + np.sin(ang) * r * 0.6,
                     r * 0.7, rng, 0.1, 3, 0.7, ang + 1.2)
    return np.minimum(sd, lobe)


def _irregular_nucleus(
    cell: _Cell, rng: np.random.Generator, r: float, off: np.ndarray, wobble: float,
    cleft: bool,
) -> np.ndarray:
    sd = _polar_sd(cell, off[0], off[1], r, rng, wobble, 6, rng.uniform(0.75, 1.0),
                   rng.uniform(0, np.pi))
    if cleft:  # a notch cut into the nucleus, narrowing towards its centre
        ang = rng.uniform(0, 2 * np.pi)
        u = np.array([np.cos(ang), np.sin(ang)])
        pts = np.stack([off + u * r * f for f in (1.3, 0.9, 0.5, rng.uniform(0.05, 0.3))])
        sd = np.maximum(sd, -_polyline_sd(cell, pts, np.array([0.3, 0.22, 0.12]) * r))
    return sd


def _nucleoli(cell: _Cell, rng: np.random.Generator, nuc: np.ndarray, n: int) -> None:
    """Pale round nucleoli inside the nucleus."""
    inner = (_distance_inside(nuc, cell.um) > 0.9).astype(np.float32)
    spots = _dots(cell, rng, inner, n, (0.35, 0.6))
    cell.amt = cell.amt * (1.0 - 0.45 * np.clip(spots, 0, 1))[:, :, None]


# --------------------------------------------------------------------------- cytoplasm
def _body(
    cell: _Cell, rng: np.random.Generator, d: float, wobble: float = 0.03,
    ratio: float = 1.0,
) -> np.ndarray:
    """Set the cell's alpha to a wobbly disc of diameter ``d``; return its coverage."""
    cover = cell.soft(_polar_sd(cell, 0.0, 0.0, d / 2, rng, wobble, 5, ratio,
                                rng.uniform(0, np.pi)))
    cell.alpha = cover
    return cover


def _granules(
    cell: _Cell, rng: np.random.Generator, where: np.ndarray, pigment: str,
    radius_um: tuple[float, float], packing: float, strength: float,
) -> None:
    """Add granules covering about ``packing`` of the area of ``where``."""
    area = float((where > 0.5).sum()) * cell.um**2
    r = float(np.mean(radius_um))
    count = int(packing * area / (np.pi * r * r))
    g = _dots(cell, rng, where, count, radius_um) * where
    cell.add(np.clip(g, 0, 1.2) * strength, PIG[pigment])


def _vacuoles(cell: _Cell, rng: np.random.Generator, where: np.ndarray, n: int) -> None:
    spots = _dots(cell, rng, where, n, (0.3, 0.8))
    cell.amt = cell.amt * (1.0 - 0.75 * np.clip(spots, 0, 1))[:, :, None]


def _neutrophil_cyto(cell: _Cell, rng: np.random.Generator, cover: np.ndarray) -> None:
    tone = rng.uniform(0.85, 1.15)
    cell.over(cover, PIG["neut_cyto"] * tone * (1 + 0.05 * _noise(cell, rng, 1.5))[:, :, None])
    _granules(cell, rng, cover, "neut_granule", (0.12, 0.2), 0.6, rng.uniform(0.25, 0.45))


# --------------------------------------------------------------------------- red cells
def rbc(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Red cell: pink-red disc, central pallor about a third of the diameter; some ovals,
    some without pallor."""
    d = _diameter(rng, "RBC")
    ratio = rng.uniform(0.75, 0.9) if rng.random() < 0.15 else rng.uniform(0.93, 1.0)
    cell = _Cell(d / np.sqrt(ratio) + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.012, ratio)
    dist = _distance_inside(cover, um_per_px)
    rho = np.clip(1.0 - dist / (d / 2), 0, 1)  # 0 in the centre, 1 at the rim
    pallor = 0.0 if rng.random() < 0.12 else rng.uniform(0.55, 0.85)
    width = rng.uniform(0.3, 0.4)  # pallor diameter / cell diameter
    profile = 1.0 - pallor * np.exp(-((rho / width) ** 4))
    profile = profile + 0.12 * np.exp(-(rho - 0.85) ** 2 / 0.01)
    tone = rng.uniform(0.85, 1.12) * (1.1 if pallor == 0 else 1.0)
    tex = 1.0 + 0.03 * _noise(cell, rng, 1.2)
    cell.over(cover, (tone * profile * tex)[:, :, None] * PIG["rbc"])
    return cell.finish()


def nucleated_rbc(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Nucleated red cell: small, round, very dense, often eccentric nucleus; pink to blue-grey
    cytoplasm."""
    d = _diameter(rng, "Nucleated RBC", 0.0, 0.8)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.03, rng.uniform(0.88, 1.0))
    t = rng.uniform(0.2, 1.0)
    cyto = (1 - t) * PIG["rbc"] * 0.95 + t * PIG["nrbc_blue"]
    cell.over(cover, cyto * (1 + 0.04 * _noise(cell, rng, 1.5))[:, :, None])
    r = d * rng.uniform(0.2, 0.27)
    off = rng.normal(0, 1, 2)
    off = off / (np.hypot(*off) + 1e-9) * (d / 2 - r) * rng.uniform(0.0, 0.7)
    nuc = cell.soft(_polar_sd(cell, off[0], off[1], r, rng, 0.04, 4)) * cover
    _chromatin(cell, rng, nuc, rng.uniform(1.1, 1.3), 0.3)
    return cell.finish()


# --------------------------------------------------------------------------- platelets
def _platelet_body(
    rng: np.random.Generator, um_per_px: float, d: float, wobble: float, granular: float,
) -> np.ndarray:
    cell = _Cell(d * 1.4 + 0.5, um_per_px)
    cover = _body(cell, rng, d, wobble, rng.uniform(0.7, 1.0))
    cell.over(cover, PIG["plt_rim"] * rng.uniform(0.9, 1.25))
    inner = cover * (_distance_inside(cover, um_per_px) > d * rng.uniform(0.06, 0.14))
    haze = cell.soft(np.where(inner > 0.5, -1.0, 1.0).astype(np.float32))
    cell.add(cv2.GaussianBlur(haze, (0, 0), 0.15 / um_per_px) * 0.35, PIG["plt_granule"])
    _granules(cell, rng, inner, "plt_granule", (0.12, 0.22), granular, 0.8)
    return cell.finish()


def platelet(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Platelet: purple granular centre, thin pale blue rim, irregular outline, 2-4 um.

    The size follows the platelets of real PBC smears: the 303 platelet boxes of
    ``pbc-fields`` that do not touch the border have a median box of 3.2 um (10-90 %:
    2.5-4.0 um) and, segmented like ``benchmarks/atlas_vs_real.py`` does, a median
    equivalent-circle diameter of 2.4 um (IQR 2.0-2.8 um); uniform 2-4 um here measures
    2.5 um the same way. The issue's table (1.5-3 um) is a little small for these images;
    the PBC ``platelet`` class folder (median 5.9 um) is CellaVision's pick of large
    platelets and is not used as the size of an ordinary platelet.
    """
    d = _diameter(rng, "Platelet")
    return _platelet_body(rng, um_per_px, d, 0.12, rng.uniform(0.6, 1.0))


def giant_platelet(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Giant platelet, red-cell size or more: granular purple, pale rim."""
    d = _diameter(rng, "Giant platelet", 0.05, 0.9)
    return _platelet_body(rng, um_per_px, d, 0.08, rng.uniform(0.5, 0.9))


def activated_platelet(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Activated platelet: spiky pseudopods, clumped granules."""
    d = _diameter(rng, "Activated platelet", 0.05, 0.6)
    cell = _Cell(d * 2.2 + 0.5, um_per_px)
    sd = _polar_sd(cell, 0.0, 0.0, d / 2 * 0.85, rng, 0.1, 4)
    for _ in range(int(rng.integers(3, 8))):
        ang = rng.uniform(0, 2 * np.pi)
        length = d / 2 * rng.uniform(1.2, 1.8)
        tip = (np.cos(ang) * length, np.sin(ang) * length)
        base = (np.cos(ang) * d * 0.2, np.sin(ang) * d * 0.2)
        sd = np.minimum(sd, _capsule_sd(cell, base, tip, rng.uniform(0.1, 0.18)))
    cover = cell.soft(sd)
    cell.alpha = cover
    cell.over(cover, PIG["plt_rim"] * rng.uniform(0.9, 1.3))
    core = cell.soft(_polar_sd(cell, 0, 0, d * 0.28, rng, 0.15, 3)) * cover
    cell.add(cv2.GaussianBlur(core, (0, 0), 0.25 / um_per_px) * 0.5, PIG["plt_granule"])
    _granules(cell, rng, core, "plt_granule", (0.2, 0.35), 0.9, 0.8)
    return cell.finish()


# --------------------------------------------------------------------------- granulocytes
def _granulocyte(
    rng: np.random.Generator, um_per_px: float, cls: str, nucleus_sd: Callable, coarse: float,
    size: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    d = _diameter(rng, cls, *size)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.03, rng.uniform(0.9, 1.0))
    _neutrophil_cyto(cell, rng, cover)
    nuc = cell.soft(nucleus_sd(cell, rng, d)) * cover
    _chromatin(cell, rng, nuc, rng.uniform(0.9, 1.1), coarse)
    return cell.finish()


def segmented_neutrophil(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Segmented neutrophil: 3-5 lobes joined by thin strands, coarse chromatin."""
    def nucleus(cell, rng, d):
        n = int(rng.choice([3, 3, 4, 4, 5]))
        return _lobed_nucleus(cell, rng, d, n, d * rng.uniform(0.115, 0.14), 0.18, d * 0.28)
    return _granulocyte(rng, um_per_px, "Segmented neutrophil", nucleus, 0.8, (0.65, 1.0))


def band_cell(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Band cell: an unsegmented C- or U-shaped band of even width."""
    return _granulocyte(rng, um_per_px, "Band cell", _band_nucleus, 0.7, (0.55, 0.95))


def hypersegmented_neutrophil(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Hypersegmented neutrophil: 6 or more lobes."""
    def nucleus(cell, rng, d):
        n = int(rng.integers(6, 9))
        return _lobed_nucleus(cell, rng, d, n, d * rng.uniform(0.075, 0.09), 0.14, d * 0.32)
    return _granulocyte(rng, um_per_px, "Hypersegmented neutrophil", nucleus, 0.8, (0.1, 0.8))


def hyposegmented_neutrophil(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Hyposegmented (Pelger-Huet-like): two lobes on a strand (pince-nez) or a peanut."""
    def nucleus(cell, rng, d):
        ang = rng.uniform(0, 2 * np.pi)
        u = np.array([np.cos(ang), np.sin(ang)])
        r = d * rng.uniform(0.14, 0.17)
        if rng.random() < 0.6:  # pince-nez
            sep = r * rng.uniform(2.3, 2.9)
            a, b = -u * sep / 2, u * sep / 2
            sd = np.minimum(_polar_sd(cell, *a, r, rng, 0.05, 3), _polar_sd(cell, *b, r, rng,
                                                                               0.05, 3))
            return np.minimum(sd, _capsule_sd(cell, a, b, 0.18))
        sep = r * rng.uniform(1.2, 1.5)  # peanut: two overlapping lobes with a waist
        return np.minimum(_polar_sd(cell, *(-u * sep / 2), r, rng, 0.04, 3),
                          _polar_sd(cell, *(u * sep / 2), r * 0.9, rng, 0.04, 3))
    return _granulocyte(rng, um_per_px, "Hyposegmented neutrophil", nucleus, 1.0, (0.3, 0.9))


def eosinophil(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Eosinophil: usually two lobes, cytoplasm packed with large orange-red granules."""
    d = _diameter(rng, "Eosinophil", 0.0, 0.55)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.03, rng.uniform(0.88, 1.0))
    cell.over(cover, PIG["eos_cyto"] * rng.uniform(0.7, 0.9))
    _granules(cell, rng, cover, "eos_granule", (0.22, 0.3), 1.1, rng.uniform(0.45, 0.55))
    n = 2 if rng.random() < 0.8 else 3
    nuc_sd = _lobed_nucleus(cell, rng, d, n, d * rng.uniform(0.13, 0.16), 0.2, d * 0.22)
    nuc = cell.soft(nuc_sd) * cover
    _chromatin(cell, rng, nuc, rng.uniform(0.95, 1.1), 0.6)
    return cell.finish()


def basophil(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Basophil: lobed nucleus largely hidden by dense dark purple-black granules."""
    d = _diameter(rng, "Basophil", 0.6, 1.0)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.05, rng.uniform(0.85, 1.0))
    cell.over(cover, PIG["neut_cyto"] * rng.uniform(1.0, 1.4))
    nuc_sd = _lobed_nucleus(cell, rng, d, int(rng.integers(2, 4)), d * 0.15, 0.3, d * 0.18)
    nuc = cell.soft(nuc_sd) * cover
    _chromatin(cell, rng, nuc, rng.uniform(0.75, 0.9), 0.4)
    _granules(cell, rng, cover, "baso_granule", (0.25, 0.5), rng.uniform(0.6, 1.0),
              rng.uniform(0.6, 0.9))
    return cell.finish()


# --------------------------------------------------------------------------- lymphoid
def lymphocyte(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Lymphocyte: round dense nucleus filling most of the cell, a thin sky-blue rim."""
    d = _diameter(rng, "Lymphocyte", 0.6, 1.0)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.04, rng.uniform(0.88, 1.0))
    cell.over(cover, PIG["lymph_cyto"] * rng.uniform(0.7, 1.2))
    r = d / 2 * rng.uniform(0.75, 0.86)
    off = rng.normal(0, 1, 2) * (d / 2 - r) * 0.35
    nuc = cell.soft(_polar_sd(cell, off[0], off[1], r, rng, 0.05, 4, rng.uniform(0.85, 1.0)))
    _chromatin(cell, rng, nuc * cover, rng.uniform(0.95, 1.15), 0.7)
    return cell.finish()


def _scalloped_body(
    cell: _Cell, rng: np.random.Generator, d: float, bites: int
) -> np.ndarray:
    """A wobbly disc with ``bites`` concave dents, as where a cell wraps round red cells."""
    sd = _polar_sd(cell, 0.0, 0.0, d / 2, rng, 0.06, 5, rng.uniform(0.85, 1.0),
                   rng.uniform(0, np.pi))
    for _ in range(bites):
        ang = rng.uniform(0, 2 * np.pi)
        rr = rng.uniform(3.4, 4.0)  # a red cell's radius
        c = np.array([np.cos(ang), np.sin(ang)]) * (d / 2 + rr * rng.uniform(0.55, 0.85))
        sd = np.maximum(sd, -(np.hypot(cell.x - c[0], cell.y - c[1]) - rr))
    cover = cell.soft(sd)
    cell.alpha = cover
    return cover


def reactive_lymphocyte(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Reactive lymphocyte: abundant blue cytoplasm, darker at the edge, scalloped."""
    d = _diameter(rng, "Reactive lymphocyte", 0.1, 0.8)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _scalloped_body(cell, rng, d, int(rng.integers(1, 4)))
    edge = np.exp(-_distance_inside(cover, um_per_px) / rng.uniform(0.8, 1.6))
    shade = rng.uniform(0.35, 0.6) + rng.uniform(0.6, 0.9) * edge
    cell.over(cover, shade[:, :, None] * PIG["deep_blue"])
    r = d * rng.uniform(0.2, 0.27)
    off = rng.normal(0, 1, 2) * d * 0.08
    nuc = cell.soft(_irregular_nucleus(cell, rng, r, off, 0.05, False)) * cover
    _chromatin(cell, rng, nuc, rng.uniform(0.85, 1.0), 0.5)
    return cell.finish()


def atypical_lymphocyte(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Atypical lymphocyte: irregular or cleft nucleus, finer chromatin, maybe nucleoli;
    variable basophilic cytoplasm."""
    d = _diameter(rng, "Atypical lymphocyte", 0.05, 0.75)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.06, rng.uniform(0.8, 1.0))
    t = rng.uniform(0, 1)
    cell.over(cover, ((1 - t) * PIG["lymph_cyto"] + t * PIG["deep_blue"]) * rng.uniform(0.6, 1.0))
    r = d * rng.uniform(0.27, 0.36)
    off = rng.normal(0, 1, 2) * d * 0.05
    nuc = cell.soft(_irregular_nucleus(cell, rng, r, off, 0.14, rng.random() < 0.5)) * cover
    _chromatin(cell, rng, nuc, rng.uniform(0.7, 0.85), 0.2, clump_um=0.45)
    _nucleoli(cell, rng, nuc, int(rng.integers(0, 3)))
    return cell.finish()


def plasma_cell(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Plasma cell: eccentric round nucleus with clock-face chromatin, deep blue cytoplasm with
    a pale zone beside the nucleus."""
    d = _diameter(rng, "Plasma cell", 0.05, 0.55)
    ratio = rng.uniform(0.65, 0.85)
    ang = rng.uniform(0, np.pi)
    cell = _Cell(d / np.sqrt(ratio) + 0.5, um_per_px)
    cover = cell.soft(_polar_sd(cell, 0.0, 0.0, d / 2, rng, 0.03, 4, ratio, ang))
    cell.alpha = cover
    cell.over(cover, PIG["deep_blue"] * rng.uniform(0.9, 1.25))
    u = np.array([np.cos(ang), np.sin(ang)])
    r = d * rng.uniform(0.22, 0.27)
    half = d / 2 / np.sqrt(ratio)
    c = u * (half - r * 1.05)
    hof = u * (half - r * 2.3)
    zone = np.exp(-((cell.x - hof[0]) ** 2 + (cell.y - hof[1]) ** 2) / (2 * (r * 0.55) ** 2))
    cell.amt = cell.amt * (1.0 - 0.6 * zone * cover)[:, :, None]
    nuc = cell.soft(_polar_sd(cell, c[0], c[1], r, rng, 0.03, 3)) * cover
    _chromatin(cell, rng, nuc, 0.7, 0.0)
    spokes = _clock_face(cell, rng, c, r) * nuc
    cell.add(spokes * 0.45, PIG["nucleus"])
    return cell.finish()


def _clock_face(cell: _Cell, rng: np.random.Generator, c: np.ndarray, r: float) -> np.ndarray:
    """Chromatin clumps set like the numbers of a clock round a nucleus."""
    n = int(rng.integers(7, 11))
    out = np.zeros(cell.shape, np.float32)
    for k in range(n):
        a = 2 * np.pi * k / n + rng.uniform(-0.2, 0.2)
        p = c + np.array([np.cos(a), np.sin(a)]) * r * rng.uniform(0.55, 0.75)
        out = np.maximum(out, cell.soft(np.hypot(cell.x - p[0], cell.y - p[1]) - r * 0.2))
    out = np.maximum(out, cell.soft(np.hypot(cell.x - c[0], cell.y - c[1]) - r * 0.18))
    return cv2.GaussianBlur(out, (0, 0), max(0.5, 0.1 / cell.um))


# --------------------------------------------------------------------------- monocytes
def _monocytic(
    rng: np.random.Generator, um_per_px: float, cls: str, size: tuple[float, float],
    nucleus_sd: Callable, lacy: float, nucleoli: int,
) -> np.ndarray:
    d = _diameter(rng, cls, *size)
    cell = _Cell(d + 0.5, um_per_px)
    cover = _body(cell, rng, d, 0.07, rng.uniform(0.8, 1.0))
    glass = 1 + 0.05 * _noise(cell, rng, 0.5)
    cell.over(cover, PIG["mono_cyto"] * rng.uniform(0.85, 1.2) * glass[:, :, None])
    nuc = cell.soft(nucleus_sd(cell, rng, d)) * cover
    _chromatin(cell, rng, nuc, rng.uniform(0.9, 1.05), lacy, "nucleus_lacy", 0.5)
    if nucleoli:
        _nucleoli(cell, rng, nuc, nucleoli)
    cyto = cover * (1 - nuc)
    _vacuoles(cell, rng, cyto, int(rng.integers(0, 7)))
    return cell.finish()


def monocyte(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Monocyte: kidney, horseshoe or folded nucleus with lacy chromatin; grey-blue ground-glass
    cytoplasm with vacuoles."""
    return _monocytic(rng, um_per_px, "Monocyte", (0.35, 0.75), _kidney_nucleus, 0.5, 0)


def atypical_monocyte(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Atypical (immature) monocyte: fine chromatin, nucleoli, irregular folds, vacuoles."""
    def nucleus(cell, rng, d):
        sd = _kidney_nucleus(cell, rng, d)
        extra = _polar_sd(cell, *(rng.normal(0, 1, 2) * d * 0.08), d * 0.22, rng, 0.18, 6,
                          0.8, rng.uniform(0, np.pi))
        return np.minimum(sd, extra)
    return _monocytic(rng, um_per_px, "Atypical monocyte", (0.05, 0.6), nucleus, 0.15,
                      int(rng.integers(1, 4)))


# --------------------------------------------------------------------------- smudge
def basket_cell(rng: np.random.Generator, um_per_px: float) -> np.ndarray:
    """Basket (smudge) cell: a ruptured nucleus smeared into a net of chromatin strands."""
    d = _diameter(rng, "Basket cell", 0.05, 0.8)
    cell = _Cell(d * 1.25 + 0.5, um_per_px)
    ratio = rng.uniform(0.6, 0.95)
    cover = cell.soft(_polar_sd(cell, 0, 0, d / 2, rng, 0.22, 6, ratio, rng.uniform(0, np.pi)))
    cell.alpha = cover
    haze = rng.uniform(0.25, 0.4) * (1 + 0.3 * _noise(cell, rng, 2.0))
    cell.over(cover, np.clip(haze, 0.05, 1)[:, :, None] * PIG["smudge"])
    net = np.full(cell.shape, np.inf, np.float32)
    for _ in range(int(rng.integers(8, 15))):
        start = rng.normal(0, 1, 2) * d * 0.2
        pts = _lobe_chain(rng, 5, d * 0.12, 0.9, d * 0.45) + start
        net = np.minimum(net, _polyline_sd(cell, pts, rng.uniform(0.12, 0.3)))
    strands = cell.soft(net) * cover
    strands = cv2.GaussianBlur(strands, (0, 0), max(0.5, 0.12 / um_per_px))
    cell.add(strands * rng.uniform(0.35, 0.6), PIG["smudge"])
    return cell.finish()


#: pool class -> renderer ``(rng, um_per_px) -> RGBA uint8``
RENDERERS: dict[str, Callable[[np.random.Generator, float], np.ndarray]] = {
    "RBC": rbc,
    "Nucleated RBC": nucleated_rbc,
    "Platelet": platelet,
    "Giant platelet": giant_platelet,
    "Activated platelet": activated_platelet,
    "Segmented neutrophil": segmented_neutrophil,
    "Band cell": band_cell,
    "Hypersegmented neutrophil": hypersegmented_neutrophil,
    "Hyposegmented neutrophil": hyposegmented_neutrophil,
    "Eosinophil": eosinophil,
    "Basophil": basophil,
    "Lymphocyte": lymphocyte,
    "Reactive lymphocyte": reactive_lymphocyte,
    "Atypical lymphocyte": atypical_lymphocyte,
    "Monocyte": monocyte,
    "Atypical monocyte": atypical_monocyte,
    "Plasma cell": plasma_cell,
    "Basket cell": basket_cell,
}


def render_cell(cls: str, rng: np.random.Generator | int | None, um_per_px: float) -> np.ndarray:
    """Draw one cell of class ``cls``.

    Parameters
    ----------
    cls : str
        A pool class or alias.
    rng : numpy.random.Generator, int or None
    um_per_px : float
        Scale of the sprite in micrometres per pixel.

    Returns
    -------
    ndarray of shape (H, W, 4), uint8
        Straight RGBA, alpha = 0 outside the cell, cropped to the cell.

    Raises
    ------
    ConfigError
        If ``cls`` is unknown or ``um_per_px`` is not positive.
    """
    if not um_per_px > 0:
        raise ConfigError(f"um_per_px must be positive, got {um_per_px}")
    return RENDERERS[canonical_class(cls)](np.random.default_rng(rng), float(um_per_px))


def mask_diameter_um(rgba: np.ndarray, um_per_px: float) -> float:
    """Equivalent-circle diameter (um) of a sprite's alpha >= 128 region."""
    area = float((rgba[:, :, 3] >= 128).sum()) * um_per_px**2
    return float(2.0 * np.sqrt(area / np.pi))
