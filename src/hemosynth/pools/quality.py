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
    "blurred": "blurred crop (variance of the Laplacian below the threshold)",
    "mask-touches-edge": "the cell's mask touches the crop edge",
    "merged": "two cells merged into one mask",
    "size": "size far outside the class's range",
    "duplicate": "near-duplicate of another sprite (perceptual hash)",
    "excluded-like": "source image nearly matches an image in --exclude-like",
    "unmapped": "source class not mapped to a pool class",
}

#: variance of the Laplacian (grey levels^2) below which a crop counts as blurred
BLUR_THRESHOLD = 12.0


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher is sharper)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


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


def check_candidate(
    rgb: np.ndarray,
    seg: Segmentation,
    nucleated: bool,
    blur_threshold: float = BLUR_THRESHOLD,
    min_solidity: float = 0.8,
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
    """
    if rgb.size == 0 or float(rgb.std()) < 2.0 or seg.area < 16:
        return "empty"
    if sharpness(rgb) < blur_threshold:
        return "blurred"
    if seg.touches_border():
        return "mask-touches-edge"
    if nucleated and seg.n_nuclei >= 2:
        return "merged"
    if not nucleated and solidity(seg.mask) < min_solidity:
        return "merged"
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
