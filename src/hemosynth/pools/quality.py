"""Quality filters for candidate sprites, each with a reason that the build report counts.

Per-candidate checks (:func:`check_candidate`) run right after segmentation; the size check
(:func:`size_outliers`) needs every candidate of a class and runs at the end.
"""

from __future__ import annotations

import cv2
import numpy as np

from .segment import Segmentation

#: reason keys, in report order, with their one-line explanations
REASONS: dict[str, str] = {
    "unreadable": "corrupt or unreadable image",
    "cut-by-border": "the box touches the image border (a cut cell)",
    "empty": "empty or uniform crop, or no cell found",
    "blurred": "blurred crop (Laplacian energy relative to gradient energy below the threshold)",
    "mask-touches-edge": "the cell's mask touches the crop edge",
    "merged": "two cells merged into one mask",
    "misshapen": "a red cell's mask is far from an ellipse (cut by a neighbour or ragged)",
    "inclusions": "a red cell carries stained spots (a platelet on it, granules, debris)",
    "no-cytoplasm": "a neutrophil's mask is hardly larger than its nucleus (cytoplasm missed)",
    "size": "size far outside the class's range",
    "duplicate": "near-duplicate of another sprite (perceptual hash)",
    "excluded-like": "source image nearly matches an image in --exclude-like",
    "unmapped": "source class not mapped to a pool class",
}

#: relative sharpness (:func:`sharpness`) below which a crop counts as blurred. Sharp PBC
#: crops score 0.5-1.7 (1st percentile 0.49 for whole crops, 0.59 for red-cell box crops),
#: the same crops blurred by a Gaussian of sigma 2 px score 0.2-0.4
BLUR_THRESHOLD = 0.35


def laplacian_variance(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (absolute: grows with edges and contrast)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def sharpness(rgb: np.ndarray) -> float:
    """Relative sharpness: Laplacian energy over gradient energy of the grey image.

    The plain variance of the Laplacian grows with the number and contrast of edges, so it
    calls a smooth crop (one red cell on plasma) blurred although its one edge is sharp. This
    ratio compares the crop's second derivatives with its own first derivatives: for an edge
    blurred by a Gaussian of width ``s`` it falls roughly like ``1 / s**2`` whatever the edge's
    contrast or how many edges there are (higher is sharper; about 0.5-1.7 for sharp PBC crops).

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8

    Returns
    -------
    float
        0 for a uniform crop.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    grad = float((gx * gx + gy * gy).mean())
    return lap / grad if grad > 1e-6 else 0.0


def box_touches_border(box, width: int, height: int, margin: float = 1.0) -> bool:
    """True if an ``xyxy`` box lies within ``margin`` px of the image border."""
    x0, y0, x1, y1 = box
    return x0 < margin or y0 < margin or x1 > width - margin or y1 > height - margin


def solidity(mask: np.ndarray) -> float:
    """Area of the mask over the area of its convex hull (1 for convex shapes)."""
    pts = cv2.findNonZero(mask.astype(np.uint8))
    if pts is None:
        return 0.0
    hull = cv2.contourArea(cv2.convexHull(pts))
    return float(np.count_nonzero(mask)) / hull if hull > 0 else 0.0


#: a red cell must be nearly convex and nearly an ellipse; masks cut along a touching
#: neighbour, merged with one, or ragged fail (on the PBC fields, about half of the red-cell
#: candidates, which remain plentiful). Platelets are irregular by nature and small (a few
#: pixels of outline change the ellipse IoU a lot): they only go through the merged test.
MIN_ANUCLEATE_SOLIDITY = 0.95
MIN_ELLIPSE_IOU = 0.92


#: smallest whole-cell / nucleus area ratio of a neutrophil's mask; below it the segmenter
#: kept the nucleus and missed the pale cytoplasm (the usual failure on the wbc-masks
#: Dataset 2), and the sprite's box would be the nucleus's. Set under the smallest ratio of the
#: wbc-masks neutrophil ground truth (1.48). Only the neutrophil family is checked: their
#: nuclei are crisply darker than their cytoplasm; in lymphocytes, monocytes and basophils the
#: stained area the segmenter calls nucleus takes in the blue cytoplasm, so a good mask can
#: have a ratio near 1 (seen on PBC crops: 40% of correct masks would go).
MIN_CELL_TO_NUCLEUS: dict[str, float] = {
    "Segmented neutrophil": 1.4, "Band cell": 1.4, "Hypersegmented neutrophil": 1.4,
    "Hyposegmented neutrophil": 1.4,
}


def missed_cytoplasm(seg: Segmentation, min_ratio: float | None) -> bool:
    """True if the whole-cell mask is under ``min_ratio`` times its nucleus's area.

    ``min_ratio`` is the class's entry of :data:`MIN_CELL_TO_NUCLEUS` (None: not checked).
    """
    nuc = int(np.count_nonzero(seg.nucleus))
    return bool(min_ratio and nuc and seg.area < min_ratio * nuc)


#: a red cell whose stained spots (:func:`stained_spots`) cover more than this share of its
#: mask is dropped. Such spots are platelets lying on the cell, granules of a neighbour or stain
#: debris; pasted into a smear they are unlabelled platelet-like dots, and a detector trained
#: on them learns that platelets are background (on the PBC pool, 2.6% of the red cells carried
#: them, 20-280 px each, enough to put several on every other BCCD-like smear, and the
#: platelet class was never learned). Clean red cells score 0 (99th percentile 0.8%).
MAX_SPOT_SHARE = 0.002
#: a stained spot is darker (CIELAB L, 0-255) and bluer (b) than the cell's median by these
SPOT_DL, SPOT_DB = 25, 10


def stained_spots(rgb: np.ndarray, mask: np.ndarray) -> int:
    """Pixels of an anucleate cell's mask that are stained like a nucleus or platelet.

    A pixel counts when it is darker than the cell's median lightness by :data:`SPOT_DL` and
    bluer than its median ``b`` by :data:`SPOT_DB`, inside the mask eroded by 2 px (the edge's
    soft alpha and the neighbours' rims are left out).

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
    mask : ndarray of shape (H, W), bool

    Returns
    -------
    int
    """
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if np.count_nonzero(inner) < 20:
        return 0
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.int16)
    light, blue = lab[:, :, 0], lab[:, :, 2]
    dl = np.median(light[inner]) - SPOT_DL
    db = np.median(blue[inner]) - SPOT_DB
    return int(np.count_nonzero((light < dl) & (blue < db) & inner))


def ellipse_iou(mask: np.ndarray) -> float:
    """IoU of the mask's largest outer contour with the ellipse fitted to it (0 if too small)."""
    m = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0.0
    c = max(contours, key=cv2.contourArea)
    if len(c) < 5:
        return 0.0
    ell = np.zeros_like(m)
    cv2.ellipse(ell, cv2.fitEllipse(c), 1, -1)
    filled = np.zeros_like(m)
    cv2.drawContours(filled, [c], -1, 1, -1)
    union = int((ell | filled).sum())
    return float((ell & filled).sum()) / union if union else 0.0


def check_candidate(
    rgb: np.ndarray,
    seg: Segmentation,
    nucleated: bool,
    blur_threshold: float = BLUR_THRESHOLD,
    min_solidity: float = 0.8,
    regular: bool = False,
    min_cell_ratio: float | None = None,
) -> str | None:
    """The first failed filter's reason key, or None if the candidate passes.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The crop that was segmented.
    seg : Segmentation
    nucleated : bool
        Whether the class has a nucleus (white cells, nucleated red cells): two nuclei in the
        mask mean two merged cells; for anucleate cells a concave mask (solidity below
        ``min_solidity``) does.
    regular : bool
        The cell should be a clean near ellipse (red cells): apply the ``misshapen`` and
        ``inclusions`` filters.
    min_cell_ratio : float, optional
        Smallest whole-cell / nucleus area ratio (``no-cytoplasm`` below it); see
        :data:`MIN_CELL_TO_NUCLEUS`.
    """
    if rgb.size == 0 or float(rgb.std()) < 2.0 or seg.area < 16:
        return "empty"
    if sharpness(rgb) < blur_threshold:
        return "blurred"
    if seg.touches_border():
        return "mask-touches-edge"
    if nucleated and seg.n_nuclei >= 2:
        return "merged"
    if nucleated and missed_cytoplasm(seg, min_cell_ratio):
        return "no-cytoplasm"
    if not nucleated and solidity(seg.mask) < min_solidity:
        return "merged"
    if regular and (solidity(seg.mask) < MIN_ANUCLEATE_SOLIDITY
                    or ellipse_iou(seg.mask) < MIN_ELLIPSE_IOU):
        return "misshapen"
    if regular and stained_spots(rgb, seg.mask) > MAX_SPOT_SHARE * seg.area:
        return "inclusions"
    return None


def size_outliers(areas: np.ndarray, factor: float = 3.0) -> np.ndarray:
    """Boolean mask of areas more than ``factor`` times away from the class median.

    Parameters
    ----------
    areas : ndarray of shape (N,)
        Mask areas in um^2 of one class.
    factor : float
        Allowed ratio to the median, both ways.
    """
    a = np.asarray(areas, float)
    if a.size < 5:
        return np.zeros(a.shape, bool)
    med = np.median(a)
    return (a > factor * med) | (a < med / factor)
