"""Atomic file writing and image encoding."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import DatasetError


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Raises
    ------
    DatasetError
        If the file cannot be written (disk full, permissions), naming the file.
    """
    atomic_write_chunks(path, (data,))


def atomic_write_chunks(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> None:
    """:func:`atomic_write_bytes` of the concatenated ``chunks``, written as they come (a file
    larger than what is worth holding in memory at once).

    Raises
    ------
    DatasetError
        If the file cannot be written (disk full, permissions), naming the file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise DatasetError(f"{path}: cannot write ({e.strerror or e})") from None


def remove_stale_temporaries(root: str | os.PathLike[str]) -> int:
    """Delete the temporary files (``.NAME.PID.tmp``) that a killed writer left under ``root``.

    Returns the number removed.
    """
    n = 0
    for tmp in Path(root).rglob(".*.tmp"):
        if tmp.is_file() and tmp.name.count(".") >= 3:
            tmp.unlink(missing_ok=True)
            n += 1
    return n


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Text variant of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 1) -> None:
    """JSON variant of :func:`atomic_write_bytes` (sorted keys are not imposed)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def encode_image(rgb: np.ndarray, fmt: str, jpeg_quality: int = 95) -> bytes:
    """Encode an RGB uint8 image as ``jpg`` or ``png`` bytes (OpenCV codecs)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt == "jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    if not ok:
        raise DatasetError(f"encoding a {rgb.shape} image as {fmt} failed")
    return buf.tobytes()


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB uint8.

    Raises
    ------
    DatasetError
        If the file is missing, unreadable or corrupt, naming it.
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, np.uint8)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read image ({e.strerror})") from None
    img = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path}: corrupt or unreadable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
