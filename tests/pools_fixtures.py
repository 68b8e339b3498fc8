"""Synthetic smear crops with known masks, for the pools tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

PLASMA = (238, 226, 222)
RBC_COLOR = (214, 150, 160)
CYTO = (200, 185, 220)
NUCLEUS = (90, 45, 130)
PLATELET = (140, 90, 170)
RBC_D = 40  # red-cell diameter in the fixtures, pixels


def _noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = rng.normal(0, 3.0, img.shape)
    return np.clip(img.astype(np.float64) + n, 0, 255).astype(np.uint8)


def draw_crop(
    rng: np.random.Generator, size: int = 160, kind: str = "wbc", lobes: int = 1,
    rbcs: int = 6,
) -> tuple[np.ndarray, np.ndarray]:
    """An RGB crop with the cell of ``kind`` at the centre and red cells around it.

    Returns
    -------
    rgb : ndarray of shape (size, size, 3)
    mask : ndarray of shape (size, size), bool
        The central cell's true mask.
    """
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = PLASMA
    c = size // 2
    # red cells on a ring, some touching the central cell
    for k in range(rbcs):
        ang = 2 * np.pi * k / rbcs + rng.uniform(-0.2, 0.2)
        r = 0.5 * 56 + RBC_D / 2 + rng.uniform(-2, 6)
        x, y = int(c + r * np.cos(ang)), int(c + r * np.sin(ang))
        cv2.circle(img, (x, y), RBC_D // 2, RBC_COLOR, -1, cv2.LINE_AA)
        cv2.circle(img, (x, y), RBC_D // 6, (226, 190, 196), -1, cv2.LINE_AA)
    mask = np.zeros((size, size), np.uint8)
    if kind == "wbc":
        cv2.circle(img, (c, c), 28, CYTO, -1, cv2.LINE_AA)
        cv2.circle(mask, (c, c), 28, 1, -1)
        if lobes == 1:
            cv2.circle(img, (c + 2, c - 1), 15, NUCLEUS, -1, cv2.LINE_AA)
        else:
            for k in range(lobes):
                ang = 2 * np.pi * k / lobes
                cv2.circle(img, (int(c + 10 * np.cos(ang)), int(c + 10 * np.sin(ang))), 8,
                           NUCLEUS, -1, cv2.LINE_AA)
    elif kind == "rbc":
        img[:] = PLASMA
        cv2.circle(img, (c, c), RBC_D // 2, RBC_COLOR, -1, cv2.LINE_AA)
        cv2.circle(mask, (c, c), RBC_D // 2, 1, -1)
    elif kind == "platelet":
        cv2.circle(img, (c, c), 6, PLATELET, -1, cv2.LINE_AA)
        cv2.circle(mask, (c, c), 6, 1, -1)
    return _noise(img, rng), mask > 0


def write_crops(root: Path, layout: dict[str, list[str]], seed: int = 0) -> Path:
    """Write a crops source: ``layout`` maps folder -> file names (prefix decides the kind)."""
    rng = np.random.default_rng(seed)
    for folder, files in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in files:
            kind = "platelet" if folder == "platelet" else "wbc"
            rgb, _ = draw_crop(rng, kind=kind, lobes=2 if name.startswith("SNE") else 1)
            cv2.imwrite(str(root / folder / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return root


def write_field(root: Path, seed: int = 0, n: int = 2) -> Path:
    """A YOLO-annotated field source: red cells and a platelet, one RBC cut by the border."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("WBC\nRBC\nPlatelet\n")
    W, H = 240, 200
    for i in range(n):
        img = np.zeros((H, W, 3), np.uint8)
        img[:] = PLASMA
        lines = []
        centres = [(50, 50), (140, 60), (60, 140), (160, 150), (W - 8, 100)]
        for x, y in centres:
            x = x + int(rng.integers(-3, 4))
            cv2.circle(img, (x, y), RBC_D // 2, RBC_COLOR, -1, cv2.LINE_AA)
            x0, x1 = max(0, x - RBC_D / 2), min(W, x + RBC_D / 2)
            y0, y1 = y - RBC_D / 2, y + RBC_D / 2
            lines.append(f"1 {(x0 + x1) / 2 / W} {(y0 + y1) / 2 / H} {(x1 - x0) / W} "
                         f"{(y1 - y0) / H}")
        cv2.circle(img, (110, 110), 6, PLATELET, -1, cv2.LINE_AA)
        lines.append(f"2 {110 / W} {110 / H} {16 / W} {16 / H}")
        lines.append(f"0 {110 / W} {110 / H} {30 / W} {30 / H}")  # 'WBC': unmapped
        cv2.imwrite(str(root / "images" / f"f{i}.png"),
                    cv2.cvtColor(_noise(img, rng), cv2.COLOR_RGB2BGR))
        (root / "labels" / f"f{i}.txt").write_text("\n".join(lines) + "\n")
    return root
