"""Compare the procedural atlas with real PBC crops: cell diameter and colours.

For the 8 classes the PBC crops in ``../shared/data/pbc`` cover, real crops and synthetic crops
of the same size and scale (PBC: 7.5 um per 74 px) are measured by the *same* segmentation:

* the plasma colour from the brightest pixels, then optical density against it;
* foreground = optical density above a threshold, holes filled; nucleus = dense pixels;
* the cell of interest: the dense blob nearest the centre (with lobes within 5 um), grown to
  the foreground blob holding it after an opening that removes touching red cells, and kept
  within 5 um of the nucleus;
* platelets: the optical density is split into the ``pbc`` profile's three dyes; the granular
  purple body is where the smoothed nucleus dye is high (red cells, halos and plasma hold
  almost none of it), and the platelet is that body plus the pale blue rim around it (within
  1.2 um, blue dye well above a red cell's). The "nucleus" columns are the granular body, the
  "cytoplasm" columns the rim;
* diameter = equivalent-circle diameter in micrometres; colours = mean CIELAB of the nucleus,
  the cytoplasm (cell minus nucleus) and the background (far from any foreground).

Real platelets: the PBC ``platelet`` folder is what CellaVision picked out as cells, mostly
large platelets (median about 5.9 um, about 0.8 of a red cell), not the platelets of a smear.
The reference for the atlas's Platelet class is therefore every platelet boxed in
``pbc-fields`` (same PBC images and scale, boxes not touching the border), each segmented at
its box centre and kept within its box grown by 0.5 um; the class folder is printed beside it
for information. ``n real`` counts the crops (or boxes) measured of those tried.

Synthetic crops are rendered like a smear: the class's atlas cell at the centre, atlas red cells
around it, the default stain (``pbc`` profile, per-smear variation), background and optics.

Run::

    .venv/bin/python benchmarks/atlas_vs_real.py [--data ../shared/data/pbc] [--n 60] \
        [--classes Platelet ...] [--overlay /tmp/overlays] [--verbose]

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
from hemosynth.smear.stain import PROFILES, StainProfile

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
PLT_CORE = 0.15  # smoothed nucleus-dye amount of a platelet's granular body
PLT_RIM_UM = 1.2  # a platelet's pale rim reaches at most this far beyond its granular body
_INV_BASIS = np.linalg.inv(PROFILES["pbc"].basis).astype(np.float32)  # OD -> stain amounts


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


def segment(
    rgb: np.ndarray, platelet: bool, centre: tuple[float, float] | None = None,
    within: np.ndarray | None = None,
) -> dict[str, np.ndarray] | None:
    """Masks of the cell of interest, its nucleus and the background of one crop.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
    platelet : bool
        Look for a platelet (see :func:`_platelet`) instead of a nucleated cell.
    centre : (x, y), optional
        Where the cell is; the crop's centre by default.
    within : ndarray of shape (H, W), bool, optional
        Keep the cell inside this region (platelets only: a labelled box).

    Returns
    -------
    dict with boolean masks ``cell``, ``nucleus``, ``background``, or None if nothing is found.
    For a platelet ``nucleus`` is its granular centre (granulomere).
    """
    img = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 1.0)
    bg = _background(img)
    od3 = -np.log10(np.clip(img / bg, 1 / 255, None))
    od = od3.sum(axis=2)
    fg = _fill_holes(cv2.morphologyEx((od > FG_OD).astype(np.uint8), cv2.MORPH_OPEN, _disk(2)))
    background = ~cv2.dilate(fg.astype(np.uint8), _disk(6)).astype(bool)
    h, w = fg.shape
    centre = np.array([w / 2, h / 2] if centre is None else centre, np.float64)
    if platelet:
        found = _platelet(od3, centre, w, within)
        if found is None:
            return None
        body, cell = found
        return {"cell": cell, "nucleus": body, "background": background}
    dense = od > DENSE_OD
    nuc = _central_nucleus(dense, centre, w)
    if nuc is None:
        return None
    cell = _split_cell(fg, nuc)
    return {"cell": cell, "nucleus": cell & dense, "background": background}


def _platelet(
    od3: np.ndarray, centre: np.ndarray, w: int, within: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Granular body and whole platelet nearest ``centre``, from stain amounts.

    The optical density is split into the ``pbc`` profile's dyes (red-cell, nucleus, blue). The
    granular purple body is where the smoothed *nucleus* dye exceeds :data:`PLT_CORE`: red cells
    and the plasma hold almost none, so neither halos nor touching red cells join it. The
    platelet is that body (holes filled) plus its pale blue rim: foreground within
    :data:`PLT_RIM_UM` of the body whose blue dye is clearly above a red cell's.
    """
    amt = od3 @ _INV_BASIS
    score = cv2.GaussianBlur(amt[..., 1], (0, 0), 0.4 / UM)
    core = cv2.morphologyEx((score > PLT_CORE).astype(np.uint8), cv2.MORPH_OPEN, _disk(0.2 / UM))
    if within is not None:
        core &= within.astype(np.uint8)
    _, lab, stats, cents = cv2.connectedComponentsWithStats(core, connectivity=8)
    ok = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] * UM**2 > 0.8) + 1
    if ok.size == 0:
        return None
    dist = np.hypot(*(cents[ok] - centre).T)
    if dist.min() > (0.25 * w if within is None else 1.0 / UM):
        return None
    body = (lab == ok[np.argmin(dist)]).astype(np.uint8)
    body = _fill_holes(cv2.morphologyEx(body, cv2.MORPH_CLOSE, _disk(0.3 / UM)))
    blue = cv2.GaussianBlur(amt[..., 2], (0, 0), 0.2 / UM)
    rim = (od3.sum(axis=2) > FG_OD) & (blue > 0.2) & (blue > 0.35 * amt[..., 0])
    near = cv2.dilate(body.astype(np.uint8), _disk(PLT_RIM_UM / UM)).astype(bool)
    cell = body | (near & rim)
    if within is not None:
        cell &= within
    cell = _fill_holes(cv2.morphologyEx(cell.astype(np.uint8), cv2.MORPH_OPEN, _disk(1)))
    _, lab = cv2.connectedComponents(cell.astype(np.uint8), connectivity=8)
    ids, counts = np.unique(lab[body & (lab > 0)], return_counts=True)
    cell = (lab == ids[np.argmax(counts)]) | body if ids.size else body
    return body, cell


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


def measure(
    rgb: np.ndarray, platelet: bool, centre: tuple[float, float] | None = None,
    within: np.ndarray | None = None,
) -> dict[str, object] | None:
    """Diameter (um) and mean CIELAB of nucleus, cytoplasm and background of one crop.

    Also returns the segmentation (``seg``), for overlays.
    """
    seg = segment(rgb, platelet, centre, within)
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
        "seg": seg,
    }


# --------------------------------------------------------------------------- samples
# A sample is ``(rgb, centre, within)``: an RGB crop, where its cell is (None: the centre) and
# the region the cell must stay in (None: anywhere).
def real_crops(data: Path, folder: str, prefix: str, n: int):
    """``n`` PBC class crops, evenly spaced in the sorted file list."""
    files = sorted((data / folder).glob(f"{prefix}*.jpg"))
    step = max(1, len(files) // n)
    for f in files[::step][:n]:
        img = cv2.imread(str(f))
        if img is not None:
            yield img[:, :, ::-1].copy(), None, None


def field_platelet_boxes(fields: Path) -> list[tuple[Path, float, float, float, float]]:
    """Platelet boxes of ``pbc-fields`` that do not touch the image border.

    Returns
    -------
    list of (image path, x0, y0, x1, y1) in pixels (duplicate label lines dropped).
    """
    out = []
    for lbl in sorted((fields / "labels").glob("*.txt")):
        img = fields / "images" / f"{lbl.stem}.jpg"
        pixels = cv2.imread(str(img))
        if pixels is None:
            continue
        h, w = pixels.shape[:2]
        for line in sorted(set(lbl.read_text().splitlines())):
            parts = line.split()
            if len(parts) < 5 or parts[0] != "2":  # TXL-PBC order: 2 = Platelet
                continue
            xc, yc, bw, bh = (float(v) for v in parts[1:5])
            x0, x1 = (xc - bw / 2) * w, (xc + bw / 2) * w
            y0, y1 = (yc - bh / 2) * h, (yc + bh / 2) * h
            if x0 > 1 and y0 > 1 and x1 < w - 1 and y1 < h - 1:
                out.append((img, x0, y0, x1, y1))
    return out


def field_platelets(boxes):
    """Samples of the platelets in ``boxes``: the whole field, the box centre, and the box
    grown by 0.5 um as the region the platelet must stay in (keeps neighbours out)."""
    cache: dict[Path, np.ndarray] = {}
    pad = 0.5 / UM
    for img, x0, y0, x1, y1 in boxes:
        if img not in cache:
            cache.clear()
            cache[img] = cv2.imread(str(img))[:, :, ::-1].copy()
        rgb = cache[img]
        within = np.zeros(rgb.shape[:2], bool)
        within[max(0, int(y0 - pad)) : int(np.ceil(y1 + pad)),
               max(0, int(x0 - pad)) : int(np.ceil(x1 + pad))] = True
        yield rgb, ((x0 + x1) / 2, (y0 + y1) / 2), within


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
        yield apply_optics(canvas, look["optics"], UM, rng), None, None


# --------------------------------------------------------------------------- report
def summarise(samples, platelet: bool, overlay: list | None = None):
    """Median diameter inputs and mean colours over ``samples``; ``n`` measured of ``tried``.

    Appends up to 12 overlay tiles (cell outline red, nucleus green) to ``overlay`` if given.
    """
    ms, tried = [], 0
    for rgb, centre, within in samples:
        tried += 1
        m = measure(rgb, platelet, centre, within)
        if m is None:
            continue
        ms.append(m)
        if overlay is not None and len(overlay) < 12:
            overlay.append(_overlay_tile(rgb, m["seg"], centre, 16.0 if platelet else 26.0))
    diam = np.array([m["diameter"] for m in ms])
    out = {"n": len(ms), "tried": tried, "diameter": diam}
    for part in ("nucleus", "cytoplasm", "background"):
        vals = [m[part] for m in ms if m[part] is not None]
        out[part] = np.mean(vals, axis=0) if vals else None
    return out


def _overlay_tile(rgb, seg, centre, span_um: float, px: int = 200) -> np.ndarray:
    t = np.ascontiguousarray(rgb).copy()
    for mask, colour in ((seg["cell"], (255, 0, 0)), (seg["nucleus"], (0, 200, 0))):
        cs, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(t, cs, -1, colour, 1)
    h, w = t.shape[:2]
    cx, cy = (w / 2, h / 2) if centre is None else centre
    half = int(span_um / UM / 2)
    t = cv2.copyMakeBorder(t, half, half, half, half, cv2.BORDER_CONSTANT, value=(255,) * 3)
    x, y = int(cx) + half, int(cy) + half
    return cv2.resize(t[y - half : y + half, x - half : x + half], (px, px),
                      interpolation=cv2.INTER_NEAREST)


def _save_overlay(path: Path, real: list, syn: list) -> None:
    blank = np.full((200, 200, 3), 255, np.uint8)
    rows = [np.hstack((real + [blank] * 12)[:12][k : k + 6]) for k in (0, 6)]
    rows += [np.full((8, 1200, 3), 0, np.uint8)]
    rows += [np.hstack((syn + [blank] * 12)[:12][k : k + 6]) for k in (0, 6)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows)[:, :, ::-1])


def delta_e(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b))) if a is not None and \
        b is not None else float("nan")


def _row(name: str, real, syn, verbose: bool, scored: bool = True) -> bool:
    dr, ds = np.median(real["diameter"]), np.median(syn["diameter"])
    err = (ds - dr) / dr
    des = [delta_e(real[p], syn[p]) for p in ("nucleus", "cytoplasm", "background")]
    ok = bool(abs(err) <= 0.15 and all(np.isnan(d) or d < 15 for d in des))
    fmt = ["   -  " if np.isnan(d) else f"{d:6.1f}" for d in des]
    verdict = ("yes" if ok else "NO") if scored else "(info)"
    n = f"{real['n']}/{real['tried']}"
    print(f"{name:30s} {n:>7s} {syn['n']:>3d} {dr:7.2f} {ds:7.2f} {err:+6.0%} "
          f"{fmt[0]} {fmt[1]:>7s} {fmt[2]}  {verdict}")
    if verbose:
        print(f"    diameter IQR  real {np.round(np.percentile(real['diameter'], [25, 75]), 2)} "
              f"atlas {np.round(np.percentile(syn['diameter'], [25, 75]), 2)}")
        for p in ("nucleus", "cytoplasm", "background"):
            if real[p] is None or syn[p] is None:
                continue
            print(f"    {p:10s} real {np.round(real[p], 1)} atlas {np.round(syn[p], 1)}")
    return ok or not scored


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=here.parent / "shared" / "data" / "pbc")
    ap.add_argument("--fields", type=Path, default=None,
                    help="PBC fields with platelet boxes (default: pbc-fields beside --data)")
    ap.add_argument("--n", type=int, default=60, help="crops per class and side")
    ap.add_argument("--per-class", type=int, default=24, help="atlas cells per class")
    ap.add_argument("--classes", nargs="*", default=None, help="only these classes")
    ap.add_argument("--overlay", type=Path, default=None,
                    help="write segmentation overlays (real top, atlas bottom) to this folder")
    ap.add_argument("--verbose", action="store_true", help="print IQRs and mean colours")
    args = ap.parse_args(argv)
    fields = args.fields or args.data.parent / "pbc-fields"
    if not args.data.is_dir():
        print(f"{args.data}: PBC crops not found", file=sys.stderr)
        return 2
    pool = memory_atlas(per_class=args.per_class)
    head = (f"{'class (real reference)':30s} {'n real':>7s} {'syn':>3s} {'d real':>7s} "
            f"{'d atlas':>7s} {'d err':>6s} {'dE nuc':>6s} {'dE cyto':>7s} {'dE bg':>6s}  pass")
    print(head)
    print("-" * len(head))
    ok_all = True
    for cls, (folder, prefix) in CLASSES.items():
        if args.classes and cls not in args.classes:
            continue
        plt = cls == "Platelet"
        ov_r, ov_s = ([], []) if args.overlay else (None, None)
        syn = summarise(synthetic_crops(pool, cls, args.n), plt, ov_s)
        crops = summarise(real_crops(args.data, folder, prefix, args.n), plt, ov_r)
        if plt and (fields / "labels").is_dir():
            ov_f = [] if args.overlay else None
            real = summarise(field_platelets(field_platelet_boxes(fields)), plt, ov_f)
            ok_all &= _row("Platelet (pbc-fields boxes)", real, syn, args.verbose)
            _row("Platelet (pbc class crops)", crops, syn, args.verbose, scored=False)
            if args.overlay:
                _save_overlay(args.overlay / "platelet-fields.png", ov_f, ov_s)
        else:
            ok_all &= _row(cls, crops, syn, args.verbose)
        if args.overlay:
            _save_overlay(args.overlay / f"{folder}-{prefix.rstrip('_').lower()}.png", ov_r, ov_s)
    print("\nd: median equivalent-circle diameter (um); dE: CIE76 distance of mean CIELAB "
          "colours; targets |d err| <= 15 %, dE < 15. n real: crops measured / tried.")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
