"""Perceptual hashing: near-duplicate removal and leakage control (``--exclude-like``).

The hash is the DCT pHash: the grey image is resized to 32 x 32, its 2-D DCT taken, and the
8 x 8 lowest frequencies (without the DC term's influence on the threshold) compared with their
median, giving 64 bits. Two images whose hashes differ in at most ``max_distance`` bits (6 by
default) are near-duplicates: the same picture re-encoded, resized or slightly cropped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from ..formats.readers import IMAGE_EXTS

#: Hamming distance (bits of 64) at or below which two hashes are near-duplicates
MAX_DISTANCE = 6


def phash(image: np.ndarray) -> int:
    """64-bit DCT perceptual hash of an RGB, RGBA (alpha over mid-grey) or grey image."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255
        img = (img[..., :3] * a + 128 * (1 - a)).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distances between uint64 hash arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def near_duplicates(hashes: Iterable[int], max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """Mark every hash that nearly matches an earlier one.

    Returns
    -------
    ndarray of shape (N,), bool
        True for the later member of each near-duplicate pair (the first one is kept).
    """
    h = np.fromiter((int(x) for x in hashes), np.uint64)
    dup = np.zeros(h.size, bool)
    for i in range(1, h.size):
        d = hamming(h[:i][~dup[:i]], h[i])
        dup[i] = bool(d.size) and int(d.min()) <= max_distance
    return dup


def hash_folder(folder: str | os.PathLike[str]) -> np.ndarray:
    """pHashes of every readable image under ``folder`` (recursive), as uint64.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTS:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is not None:
                out.append(phash(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
    return np.asarray(out, np.uint64)


def matches_any(h: int, bank: np.ndarray, max_distance: int = MAX_DISTANCE) -> bool:
    """True if hash ``h`` is within ``max_distance`` bits of any hash in ``bank``."""
    return bool(bank.size) and int(hamming(bank, np.uint64(h)).min()) <= max_distance
