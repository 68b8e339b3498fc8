"""Benchmark: how small cells (platelets) look and are boxed, real set against synthetic.

For every box of one class that does not touch the image border, it measures on the image:

- ``box``: the annotated box's diameter ((w + h) / 2, px);
- ``dot``: the equivalent diameter of the dark blob at the box's centre (pixels darker than
  the local background by more than half the blob's contrast, the connected part nearest the
  centre), i.e. the cell as it shows, whatever the box convention;
- ``contrast``: local background lightness (median of a ring around the box) minus the
  blob's darkest 5% (grey levels of the L channel of CIELAB, 0-255);
- ``fill``: box area covered by the dot's own bounding square (1 = tight boxes);
- ``edge``: the steepest lightness step across the blob's edge (grey levels per pixel), a
  sharpness measure;
- ``chroma`` and ``hue``: the blob's mean colour relative to the local background, as the
  length (CIELAB a*b* units, 8-bit scale) and angle (degrees; -90 is pure blue, 0 red) of
  its a*b* offset: how strongly, and in which hue, the cell is stained.

For the synthetic sets it also counts *look-alikes*: stained dots (darker and bluer than the
image's plasma, of the size of the class's own dots) whose centre is in no box of the class,
split into those in no box at all and those on a box of the anucleate class ``--host`` (red
cells). Unlabelled look-alikes teach a detector that the class is background. Not counted on
the real set: on BCCD, whose red cells are lavender where they overlap, the colour test takes
in overlaps.

It prints a table of medians (and 10th-90th percentiles) per set, so a synthetic dataset's
platelets can be matched to a target lab's before any detector is trained.

Usage::

    python benchmarks/platelets.py REAL [SYN ...] [--class Platelets --syn-class Platelet]

REAL and SYN are anything ``hemosynth score --test`` reads (VOC root or split file, YOLO
folder / list / data.yaml, COCO JSON, hemosynth dataset folder). Example, BCCD trainval
against a synthetic dataset made for it::

    python benchmarks/platelets.py ../shared/data/bccd/ImageSets/Main/trainval.txt \\
        runs/tstr/data/pbc-v2-bccd_like-default-584-s0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def measure(image: np.ndarray, box: np.ndarray) -> dict[str, float] | None:
    """Measures of the blob in ``box`` (xyxy) of a BGR image; None when it cannot be measured."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    if bw < 3 or bh < 3 or x0 <= 1 or y0 <= 1 or x1 >= w - 1 or y1 >= h - 1:
        return None
    pad = int(round(max(bw, bh) * 0.5)) + 2
    X0, Y0 = max(0, int(x0) - pad), max(0, int(y0) - pad)
    X1, Y1 = min(w, int(np.ceil(x1)) + pad), min(h, int(np.ceil(y1)) + pad)
    lab = cv2.cvtColor(image[Y0:Y1, X0:X1], cv2.COLOR_BGR2LAB)
    light = lab[..., 0].astype(np.float32)
    yy, xx = np.mgrid[Y0:Y1, X0:X1]
    inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
    ring = ~inside
    if ring.sum() < 10 or inside.sum() < 9:
        return None
    bg = float(np.median(light[ring]))
    dark = float(np.percentile(light[inside], 5))
    contrast = bg - dark
    if contrast < 5:
        return None
    blob = ((light < bg - contrast / 2) & inside).astype(np.uint8)
    n, lab_img, stats, cent = cv2.connectedComponentsWithStats(blob, connectivity=8)
    if n < 2:
        return None
    cx, cy = (x0 + x1) / 2 - X0, (y0 + y1) / 2 - Y0
    k = 1 + int(np.argmin(np.hypot(cent[1:, 0] - cx, cent[1:, 1] - cy)))
    area = float(stats[k, cv2.CC_STAT_AREA])
    dot = 2.0 * np.sqrt(area / np.pi)
    side = max(stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT])
    gy, gx = np.gradient(cv2.GaussianBlur(light, (3, 3), 0))
    edge_px = cv2.morphologyEx((lab_img == k).astype(np.uint8), cv2.MORPH_GRADIENT,
                               np.ones((3, 3), np.uint8)) > 0
    edge = float(np.percentile(np.hypot(gx, gy)[edge_px], 90)) if edge_px.any() else 0.0
    core = lab_img == k
    a_bg, b_bg = (float(np.median(lab[..., c][ring])) for c in (1, 2))
    da = float(np.mean(lab[..., 1][core])) - a_bg
    db = float(np.mean(lab[..., 2][core])) - b_bg
    return {"box": (bw + bh) / 2, "dot": dot, "contrast": contrast,
            "fill": float(side * side / (bw * bh)), "edge": edge,
            "chroma": float(np.hypot(da, db)), "hue": float(np.degrees(np.arctan2(db, da)))}


def stained_dots(image: np.ndarray, min_area: float, max_area: float) -> np.ndarray:
    """Centres (N, 2) of dots darker (L - 20) and bluer (b - 8) than the image's plasma.

    The plasma is the median colour of the brightest 30% of the image; dots are the
    8-connected components of that mask with ``min_area <= area <= max_area`` px.
    """
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.int16)
    light, blue = lab[..., 0], lab[..., 2]
    bright = light >= np.percentile(light, 70)
    mask = (light < np.median(light[bright]) - 20) & (blue < np.median(blue[bright]) - 8)
    _, _, stats, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    return cent[1:][(area >= min_area) & (area <= max_area)]


def _inside(points: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
    if not boxes or not len(points):
        return np.zeros(len(points), bool)
    b = np.asarray(boxes, float)
    x, y = points[:, :1], points[:, 1:]
    return ((x >= b[:, 0]) & (x <= b[:, 2]) & (y >= b[:, 1]) & (y <= b[:, 3])).any(axis=1)


def collect(spec: str, cls: str, limit: int, host: str | None
            ) -> tuple[list[dict[str, float]], dict[str, float] | None]:
    """Measures of every ``cls`` box of the set at ``spec`` (at most ``limit`` images), and,
    unless ``host`` is None, look-alike counts per image (``in-box``, ``no-box``,
    ``on-host``)."""
    from hemosynth.evaluate.testsets import read_annotations

    items = [a for a in read_annotations(spec) if cls in a.labels][:limit]
    out = []
    read = []
    for a in items:
        img = cv2.imread(str(a.file), cv2.IMREAD_COLOR)
        if img is None:
            continue
        read.append(a)
        for box, lab in zip(a.boxes, a.labels, strict=True):
            if lab == cls:
                m = measure(img, np.asarray(box, float))
                if m is not None:
                    out.append(m)
    if host is None:
        return out, None
    counts = {"in-box": 0.0, "no-box": 0.0, "on-host": 0.0}
    if not out or not read:
        return out, counts
    areas = np.pi * (np.array([m["dot"] for m in out]) / 2) ** 2
    lo, hi = np.percentile(areas, [10, 90])
    # a second pass, reading the images again, rather than holding them all in memory
    for a in read:
        dots = stained_dots(cv2.imread(str(a.file), cv2.IMREAD_COLOR), lo, hi)
        boxes = {lab: [b for b, k in zip(a.boxes, a.labels, strict=True) if k == lab]
                 for lab in set(a.labels)}
        own = _inside(dots, boxes.get(cls, []))
        anybox = _inside(dots, [b for v in boxes.values() for b in v])
        others = _inside(dots, [b for k, v in boxes.items() if k not in (cls, host) for b in v])
        host_only = _inside(dots, boxes.get(host, [])) & ~own & ~others
        counts["in-box"] += float(own.sum())
        counts["no-box"] += float((~anybox).sum())
        counts["on-host"] += float(host_only.sum())
    return out, {k: v / len(read) for k, v in counts.items()}


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return f"{p50:.1f} ({p10:.0f}-{p90:.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("real", help="the real (target) set")
    ap.add_argument("syn", nargs="*", help="synthetic datasets (or other sets) to compare")
    ap.add_argument("--class", dest="cls", default="Platelets", help="class name in REAL")
    ap.add_argument("--syn-class", default="Platelet", help="class name in the SYN sets")
    ap.add_argument("--host", default="RBC", help="anucleate class to count look-alikes on")
    ap.add_argument("--limit", type=int, default=300, help="images read per set")
    args = ap.parse_args()

    rows = [(args.real, *collect(args.real, args.cls, args.limit, None))]
    rows += [(s, *collect(s, args.syn_class, args.limit, args.host)) for s in args.syn]
    keys = ("box", "dot", "contrast", "fill", "edge", "chroma", "hue")
    print("| set | n | box px | dot px | contrast | fill | edge | chroma | hue | dots/img in box | "
          "look-alikes/img: no box | on host |")
    print("| --- " * 12 + "|")
    for spec, ms, cnt in rows:
        cols = [_fmt([m[k] for m in ms]) for k in keys]
        cols += [f"{cnt[k]:.2f}" if cnt else "-" for k in ("in-box", "no-box", "on-host")]
        print(f"| {Path(spec).name} | {len(ms)} | " + " | ".join(cols) + " |")
    print("\nmedian (10th-90th percentile); px of the stored images; contrast and edge in "
          "L grey levels (per px); look-alikes: stained dots of the class's dot size outside "
          "its boxes, per image (over images that have the class)")


if __name__ == "__main__":
    main()
