"""Compare the procedural atlas with real PBC crops: cell diameter and colours.

For the 8 classes the PBC crops in ``../shared/data/pbc`` cover, real crops and synthetic crops
of the same size and scale (PBC: 7.5 um per 74 px) are measured by the *same* segmentation:

* the plasma colour from the brightest pixels, then optical density against it;
* foreground = optical density above a threshold, holes filled; nucleus = dense pixels;
* the cell of interest: the dense blob nearest the centre (with lobes within 5 um), grown to
  the foreground blob holding it after an opening that removes touching red cells, and kept
  within 5 um of the nucleus (for platelets: the small foreground component nearest the
  centre);
* diameter = equivalent-circle diameter in micrometres; colours = mean CIELAB of the nucleus,
  the cytoplasm (cell minus nucleus) and the background (far from any foreground).

Synthetic crops are rendered like a smear: the class's atlas cell at the centre, atlas red cells
around it, the default stain (``pbc`` profile, per-smear variation), background and optics.

Run::

    .venv/bin/python benchmarks/atlas_vs_real.py [--data ../shared/data/pbc] [--n 60]

Targets (issue #3): every class's median diameter within 15 % of the real one, and every mean
colour within Delta E (CIE76) 15.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from hemosynth.config import DEFAULT_UM_PER_PX, GenerationConfig
from hemosynth.pools.atlas import memory_atlas
from hemosynth.smear.appearance import draw_appearance
from hemosynth.smear.canvas import apply_optics, harmonise, make_field
from hemosynth.smear.render import BLENDERS, composite_over
from hemosynth.smear.sprite import transform_sprite
from hemosynth.smear.stain import StainProfile

UM = DEFAULT_UM_PER_PX
CROP = (363, 360)  # rows, cols of a PBC crop
#: our class -> (PBC folder, file-name prefix)
CLASSES = {
    "Basophil": ("basophil", "BA_"),
    "Eosinophil": ("eosinophil", "EO_"),
    "Nucleated RBC": ("erythroblast", "ERB_"),
    "Lymphocyte": ("lymphocyte", "LY_"),
    "Monocyte": ("monocyte", "MO_"),
    "Segmented neutrophil": ("neutrophil", "SNE_"),
    "Band cell": ("neutrophil", "BNE_"),
    "Platelet": ("platelet", "PLATELET_"),
}
FG_OD = 0.07  # summed optical density of foreground
DENSE_OD = 0.9  # summed optical density of nucleus (and basophil granules)
REACH_UM = 5.0  # the cell extends at most this far beyond its nucleus


# --------------------------------------------------------------------------- measurement
def _background(rgb: np.ndarray) -> np.ndarray:
    s = rgb.sum(axis=2)
    return np.median(rgb[s >= np.percentile(s, 85)], axis=0)


def _disk(r: float) -> np.ndarray:
    k = max(1, int(round(r)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    h, w = m.shape
    flood = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    ff = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff, (0, 0), 1)
    return (m > 0) | (flood[1:-1, 1:-1] == 0)


def segment(rgb: np.ndarray, platelet: bool) -> dict[str, np.ndarray] | None:
    """Masks of the cell of interest, its nucleus and the background of one crop.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
    platelet : bool
        Look for a small anucleate cell instead of a dense nucleus.

    Returns
    -------
    dict with boolean masks ``cell``, ``nucleus``, ``background``, or None if nothing is found.
    """
    img = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 1.0)
    bg = _background(img)
    od = -np.log10(np.clip(img / bg, 1 / 255, None)).sum(axis=2)
    fg = _fill_holes(cv2.morphologyEx((od > FG_OD).astype(np.uint8), cv2.MORPH_OPEN, _disk(2)))
    dense = od > DENSE_OD
    background = ~cv2.dilate(fg.astype(np.uint8), _disk(6)).astype(bool)
    h, w = fg.shape
    _, lab, stats, cents = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    centre = np.array([w / 2, h / 2])
    if platelet:
        area_um2 = stats[1:, cv2.CC_STAT_AREA] * UM**2
        ok = np.flatnonzero((area_um2 > 0.8) & (area_um2 < 60)) + 1
        if ok.size == 0:
            return None
        k = ok[np.argmin(np.hypot(*(cents[ok] - centre).T))]
        if np.hypot(*(cents[k] - centre)) > 0.25 * w:
            return None
        cell = lab == k
        return {"cell": cell, "nucleus": np.zeros_like(cell), "background": background}
    nuc = _central_nucleus(dense, centre, w)
    if nuc is None:
        return None
    cell = _split_cell(fg, nuc)
    return {"cell": cell, "nucleus": cell & dense, "background": background}


def _central_nucleus(dense: np.ndarray, centre: np.ndarray, w: int) -> np.ndarray | None:
    """Dense blobs that belong to the cell nearest the centre (lobes within 5 um)."""
    d8 = cv2.morphologyEx(dense.astype(np.uint8), cv2.MORPH_OPEN, _disk(1))
    _, lab, stats, cents = cv2.connectedComponentsWithStats(d8, connectivity=8)
    big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] * UM**2 > 1.0) + 1
    if big.size == 0:
        return None
    k = big[np.argmin(np.hypot(*(cents[big] - centre).T))]
    if np.hypot(*(cents[k] - centre)) > 0.3 * w:
        return None
    seed = lab == k
    near = cv2.dilate(seed.astype(np.uint8), _disk(5.0 / UM)).astype(bool)
    keep = [j for j in big if (near & (lab == j)).any()]
    return np.isin(lab, keep)


def _split_cell(fg: np.ndarray, nucleus: np.ndarray) -> np.ndarray:
    """The foreground blob holding the nucleus, freed of touching red cells.

    A morphological opening with a disk a little larger than a red cell removes red cells and
    the necks joining them to the cell; the opened component over the nucleus is the cell. The
    disk shrinks for small cells (lymphocytes) until a component covers most of the nucleus.
    """
    nuc_total = max(1, int(nucleus.sum()))
    fg8 = fg.astype(np.uint8)
    for r_um in (4.2, 3.6, 3.0, 2.2):
        opened = cv2.morphologyEx(fg8, cv2.MORPH_OPEN, _disk(r_um / UM))
        _, lab = cv2.connectedComponents(opened, connectivity=8)
        labels, counts = np.unique(lab[nucleus & (lab > 0)], return_counts=True)
        if counts.size and counts.max() >= 0.6 * nuc_total:
            cell = lab == labels[np.argmax(counts)]
            reach = cv2.dilate(nucleus.astype(np.uint8), _disk(REACH_UM / UM)).astype(bool)
            return _fill_holes((cell & reach) | nucleus)
    return _fill_holes(nucleus)


def measure(rgb: np.ndarray, platelet: bool) -> dict[str, object] | None:
    """Diameter (um) and mean CIELAB of nucleus, cytoplasm and background of one crop."""
    seg = segment(rgb, platelet)
    if seg is None or seg["cell"].sum() < 10:
        return None
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    cyto = seg["cell"] & ~seg["nucleus"]

    def mean(mask):
        return lab[mask].mean(axis=0) if mask.sum() > 20 else None

    return {
        "diameter": 2 * np.sqrt(seg["cell"].sum() * UM**2 / np.pi),
        "nucleus": mean(seg["nucleus"]),
        "cytoplasm": mean(cyto),
        "background": mean(seg["background"]),
    }


# --------------------------------------------------------------------------- crops
def real_crops(data: Path, folder: str, prefix: str, n: int):
    files = sorted((data / folder).glob(f"{prefix}*.jpg"))
    step = max(1, len(files) // n)
    for f in files[::step][:n]:
        img = cv2.imread(str(f))
        if img is not None:
            yield img[:, :, ::-1].copy()


def synthetic_crops(pool, cls: str, n: int, seed: int = 0):
    """Crops like PBC's: one atlas cell of ``cls`` at the centre, red cells around it."""
    cfg = GenerationConfig()
    shape = BLENDERS[cfg.render.blend].shape
    rbcs, cells = pool.ids("RBC"), pool.ids(cls)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        look = draw_appearance(cfg, rng)
        stain = StainProfile.from_dict(look["stain"])
        src = StainProfile.from_dict(look["source_stain"])
        canvas = make_field(CROP[1], CROP[0], stain, look["unevenness"], UM, rng)

        def paste(sid, cx, cy, rng=rng, canvas=canvas, stain=stain, src=src):
            rec = pool.records[int(sid)]
            s = shape(transform_sprite(pool.load(int(sid)), rng.uniform(0, 360),
                                       bool(rng.random() < 0.5), rec.um_per_px / UM))
            s = harmonise(s, src, stain)
            composite_over(canvas, s, int(cx - s.shape[1] / 2), int(cy - s.shape[0] / 2))

        for _ in range(int(rng.integers(10, 18))):
            x, y = rng.uniform(0, CROP[1]), rng.uniform(0, CROP[0])
            if np.hypot(x - CROP[1] / 2, y - CROP[0] / 2) > 60:  # may touch the cell
                paste(rbcs[rng.integers(len(rbcs))], x, y)
        paste(cells[i % len(cells)], CROP[1] / 2, CROP[0] / 2)
        yield apply_optics(canvas, look["optics"], UM, rng)


# --------------------------------------------------------------------------- report
def summarise(crops, platelet: bool):
    ms = [m for m in (measure(c, platelet) for c in crops) if m is not None]
    diam = np.array([m["diameter"] for m in ms])
    out = {"n": len(ms), "diameter": diam}
    for part in ("nucleus", "cytoplasm", "background"):
        vals = [m[part] for m in ms if m[part] is not None]
        out[part] = np.mean(vals, axis=0) if vals else None
    return out


def delta_e(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b))) if a is not None and \
        b is not None else float("nan")


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=here.parent / "shared" / "data" / "pbc")
    ap.add_argument("--n", type=int, default=60, help="crops per class and side")
    ap.add_argument("--per-class", type=int, default=24, help="atlas cells per class")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"{args.data}: PBC crops not found", file=sys.stderr)
        return 2
    pool = memory_atlas(per_class=args.per_class)
    head = (f"{'class':22s} {'n':>7s} {'d real':>7s} {'d atlas':>7s} {'d err':>6s} "
            f"{'dE nuc':>6s} {'dE cyto':>7s} {'dE bg':>6s}  pass")
    print(head)
    print("-" * len(head))
    ok_all = True
    for cls, (folder, prefix) in CLASSES.items():
        plt = cls == "Platelet"
        real = summarise(real_crops(args.data, folder, prefix, args.n), plt)
        syn = summarise(synthetic_crops(pool, cls, args.n), plt)
        dr, ds = np.median(real["diameter"]), np.median(syn["diameter"])
        err = (ds - dr) / dr
        des = [delta_e(real[p], syn[p]) for p in ("nucleus", "cytoplasm", "background")]
        ok = abs(err) <= 0.15 and all(np.isnan(d) or d < 15 for d in des)
        ok_all &= ok
        fmt = ["   -  " if np.isnan(d) else f"{d:6.1f}" for d in des]
        print(f"{cls:22s} {real['n']:>3d}/{syn['n']:<3d} {dr:7.2f} {ds:7.2f} {err:+6.0%} "
              f"{fmt[0]} {fmt[1]:>7s} {fmt[2]}  {'yes' if ok else 'NO'}")
        if "--verbose" in sys.argv:
            for p in ("nucleus", "cytoplasm", "background"):
                if real[p] is None or syn[p] is None:
                    continue
                print(f"    {p:10s} real {np.round(real[p], 1)} atlas {np.round(syn[p], 1)}")
    print("\nd: median equivalent-circle diameter (um); dE: CIE76 distance of mean CIELAB "
          "colours; targets |d err| <= 15 %, dE < 15")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if a != "--verbose"]))
