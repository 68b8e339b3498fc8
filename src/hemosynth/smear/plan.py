"""Planning a smear: every random choice of one smear, recorded as plain data.

``plan_smear`` draws the counts (via the dataset's :class:`~hemosynth.smear.counts.Census`),
chooses sprites, rotations, flips and scales, and places every cell with the configured
strategy. The resulting :class:`SmearPlan` is all that rendering, annotation writing and
statistics need; they hold no randomness.

Placement order: white cells and nucleated RBCs first, then platelets, then red cells, so the
cells of interest are the last to be dropped in a crowded field. Render order (the plan's
order): red cells, platelets, nucleated RBCs, white cells, so cells of interest are drawn on top
and are never hidden beyond the IoU bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import GenerationConfig
from ..pools.store import Pool
from ..taxonomy import MAIN_OF, POOL_CLASSES
from .appearance import default_appearance, draw_appearance
from .canvas import harmonise_factors, scale_density
from .counts import Census
from .kernels import SpritePack, SpriteViews, field_extents
from .placement import PlacementStats, make_placer
from .render import BLENDERS
from .seeds import STREAM_APPEARANCE, STREAM_CELLS, STREAM_PLACEMENT, STREAM_RENDER, smear_rng
from .sprite import alpha_circle, premultiply
from .stain import StainProfile
from .warp import transform_many

#: drawing layer of each main type (higher = drawn later, on top)
LAYER = {"RBC": 0, "Platelet": 1, "Nucleated RBC": 2, "WBC": 3}
#: height in pixels of the bands in which the cells of a layer are drawn left to right
DRAW_BAND = 128


@dataclass(frozen=True)
class SmearPlan:
    """Everything needed to render and annotate one smear.

    Arrays are in render order (bottom to top); ``N`` is the number of placed cells.

    Attributes
    ----------
    index, seed : int
        Smear index and master seed.
    width, height : int
        Field size in pixels.
    um_per_px : float
    threshold : float
        The smear's IoU threshold T.
    strategy : str
    classes : tuple of str, length N
        Pool class of each cell.
    sprite_ids : ndarray of shape (N,), int64
    angles : ndarray of shape (N,)
        Rotation in degrees.
    flips : ndarray of shape (N,), bool
    scales : ndarray of shape (N,)
        Output pixels per sprite pixel.
    boxes : ndarray of shape (N, 4)
        Unclipped xyxy boxes (pixel edges; x0, y0 are the integer paste point): the extent of
        each transformed sprite's alpha at its paste point.
    field_boxes : ndarray of shape (N, 4)
        The annotation boxes: the extent of the alpha pasted inside the field (equal to
        ``boxes`` for cells wholly inside; tight around the visible part of cut cells).
    requested, dropped : dict
        Class -> cells asked for / cells that could not be placed.
    stats : PlacementStats
    render_seed : int
        Seed of the renderer's noise.
    appearance : dict
        Per-smear appearance parameters (stain, optics), drawn here, applied by the renderer.
    strengths : ndarray of shape (N,)
        Each cell's optical-density factor (``render.cell_strength``; 1 = as in the pool).
    """

    index: int
    seed: int
    width: int
    height: int
    um_per_px: float
    threshold: float
    strategy: str
    classes: tuple[str, ...]
    sprite_ids: np.ndarray
    angles: np.ndarray
    flips: np.ndarray
    scales: np.ndarray
    boxes: np.ndarray
    field_boxes: np.ndarray
    requested: dict[str, int]
    dropped: dict[str, int]
    stats: PlacementStats
    render_seed: int
    appearance: dict[str, Any] = field(default_factory=dict)
    strengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.classes)

    def clipped_boxes(self) -> np.ndarray:
        """The annotation boxes (``field_boxes``), shape (N, 4)."""
        return self.field_boxes

    def placed(self) -> dict[str, int]:
        """Class -> cells placed."""
        out: dict[str, int] = {}
        for c in self.classes:
            out[c] = out.get(c, 0) + 1
        return out


def _placement_order(per_class: dict[str, int]) -> list[str]:
    order = sorted(per_class, key=lambda c: (-LAYER[MAIN_OF[c]], POOL_CLASSES.index(c)))
    return [c for c in order for _ in range(per_class[c])]


def plan_smear(
    cfg: GenerationConfig,
    pool: Pool,
    index: int,
    census: Census | None = None,
    keep_sprites: bool = False,
) -> SmearPlan | tuple[SmearPlan, list[np.ndarray]]:
    """Plan smear ``index`` of the dataset described by ``cfg``.

    Parameters
    ----------
    cfg : GenerationConfig
    pool : Pool
    index : int
    census : Census, optional
        The dataset's census (reuse one across smears; built here if omitted).
    keep_sprites : bool
        Also return the transformed sprites (saves transforming them again to render).

    Returns
    -------
    SmearPlan, or (SmearPlan, list of ndarray) with ``keep_sprites``
    """
    if census is None:
        census = Census(cfg, set(pool.classes))
    counts = census.counts(index).per_class
    pool.require(counts)
    rng = smear_rng(cfg.seed, index, STREAM_PLACEMENT)
    pc = cfg.placement
    lo, hi = pc.iou_threshold_range
    threshold = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    typical = 8.0 / cfg.canvas.um_per_px  # a red cell is about 8 um across with its box
    placer = make_placer(cfg.canvas.width, cfg.canvas.height, threshold, pc, rng, typical)
    appearance = draw_appearance(cfg, smear_rng(cfg.seed, index, STREAM_APPEARANCE))
    sources = SourceSprites(pool, cfg, appearance)
    keep_inside = set(pc.keep_inside)
    j0, j1 = pc.scale_jitter_range

    rows: list[tuple[str, int, float, bool, float, int, int, int, int]] = []
    dropped: dict[str, int] = {}
    wanted = _placement_order(counts)
    # every cell's sprite, rotation, flip and size jitter, drawn at once, then placement's draws
    m = len(wanted)
    ids = {c: pool.ids(c).tolist() for c in counts}
    picks = rng.integers(np.array([len(ids[c]) for c in wanted], np.int64)).tolist() if m else []
    angles = rng.uniform(0.0, 360.0, m) if pc.rotate else np.zeros(m)
    flips = rng.random(m) < 0.5 if pc.flip else np.zeros(m, bool)
    jitters = rng.uniform(j0, j1, m) if j1 > j0 else np.full(m, float(j0))
    # every cell's sprite transformed first (its size is its box), then all placed in order
    sids = [ids[cls][picks[k]] for k, cls in enumerate(wanted)]
    scales = [pool.records[sid].um_per_px / cfg.canvas.um_per_px * j
              for sid, j in zip(sids, jitters.tolist(), strict=True)]
    transformed = sources.transform(sids, angles, flips, scales)
    hw = _shapes(transformed)  # (h, w) of each: no sprite need be looked at
    cells = list(zip(wanted, sids, angles.tolist(), flips.tolist(), scales, hw.tolist(),
                     strict=True))
    sizes = hw[:, ::-1].astype(float)  # (w, h)
    inside = np.array([MAIN_OF[c[0]] in keep_inside for c in cells], bool)
    covers = np.array([pc.max_cover.get(MAIN_OF[c[0]], 1.0) for c in cells], float)
    kept: list[int] = []  # the cell (index in cells) of each row
    for j, ((cls, sid, angle, flip, scale, (h, w)), pos) in enumerate(zip(
        cells, placer.place_many(sizes, inside, covers), strict=True
    )):
        if pos is None:
            dropped[cls] = dropped.get(cls, 0) + 1
            continue
        rows.append((cls, sid, angle, flip, scale, pos[0], pos[1], w, h))
        kept.append(j)

    # layer by layer; in a layer, band by band of DRAW_BAND rows and left to right in a band
    # (which cell of a layer is on top where two overlap is arbitrary: this order keeps the
    # canvas rows that compositing and visibility touch in the cache)
    order = sorted(range(len(rows)),
                   key=lambda k: (LAYER[MAIN_OF[rows[k][0]]], rows[k][6] // DRAW_BAND,
                                  rows[k][5], k))
    rows = [rows[k] for k in order]
    sprites = _take(transformed, [kept[k] for k in order])
    n = len(rows)
    boxes = np.zeros((n, 4))
    for k, r in enumerate(rows):
        boxes[k] = (r[5], r[6], r[5] + r[7], r[6] + r[8])
    field_boxes = _field_boxes(boxes, sprites, cfg.canvas.width, cfg.canvas.height)
    classes = tuple(r[0] for r in rows)
    strengths = draw_strengths(classes, cfg, smear_rng(cfg.seed, index, STREAM_CELLS))
    sprites = apply_strengths(sprites, strengths, appearance, cfg)
    render_seed = int(smear_rng(cfg.seed, index, STREAM_RENDER).integers(2**63))
    plan = SmearPlan(
        index=index,
        seed=cfg.seed,
        width=cfg.canvas.width,
        height=cfg.canvas.height,
        um_per_px=cfg.canvas.um_per_px,
        threshold=threshold,
        strategy=pc.strategy,
        classes=classes,
        sprite_ids=np.array([r[1] for r in rows], np.int64),
        angles=np.array([r[2] for r in rows], float),
        flips=np.array([r[3] for r in rows], bool),
        scales=np.array([r[4] for r in rows], float),
        boxes=boxes,
        field_boxes=field_boxes,
        requested=dict(counts),
        dropped=dropped,
        stats=placer.stats,
        render_seed=render_seed,
        appearance=appearance,
        strengths=strengths,
    )
    return (plan, sprites) if keep_sprites else plan


def _shapes(sprites: Sequence[np.ndarray]) -> np.ndarray:
    """``(h, w)`` of each sprite, int64 (N, 2); read off a
    :class:`~hemosynth.smear.kernels.SpriteViews` without making its views."""
    if isinstance(sprites, SpriteViews):
        return sprites.shapes
    return np.array([s.shape[:2] for s in sprites], np.int64).reshape(-1, 2)


def _take(sprites: list[np.ndarray], indices: list[int]) -> list[np.ndarray]:
    """``sprites`` at ``indices``; a :class:`~hemosynth.smear.kernels.SpriteViews` stays one
    (so that rendering packs it without a copy)."""
    if isinstance(sprites, SpriteViews):
        return sprites.take(indices)
    return [sprites[i] for i in indices]


def draw_strengths(
    classes: tuple[str, ...], cfg: GenerationConfig, rng: np.random.Generator
) -> np.ndarray:
    """Each cell's optical-density factor (``render.cell_strength``), in render order.

    One uniform number is drawn per cell whatever the setting, so switching the option for one
    main type leaves the other cells' factors as they were.
    """
    u = rng.random(len(classes))
    out = np.ones(len(classes))
    ranges = cfg.render.cell_strength
    for i, cls in enumerate(classes):
        r = ranges.get(MAIN_OF[cls])
        if r is not None:
            out[i] = r[0] + u[i] * (r[1] - r[0])
    return out


def apply_strengths(
    sprites: list[np.ndarray], strengths: np.ndarray | None, appearance: dict[str, Any],
    cfg: GenerationConfig,
) -> list[np.ndarray]:
    """The sprites with each one's optical density scaled by its strength (see
    :func:`hemosynth.smear.canvas.scale_density`), over the smear's plasma colour."""
    if strengths is None or not np.any(strengths != 1.0):
        return sprites
    look = appearance if appearance else default_appearance(cfg.render)
    bg = StainProfile.from_dict(look["stain"]).background
    return [scale_density(s, float(f), bg) for s, f in zip(sprites, strengths, strict=True)]


def _field_boxes(
    boxes: np.ndarray, sprites: list[np.ndarray], width: int, height: int
) -> np.ndarray:
    """Extent of each sprite's alpha inside the field (tight around the part that is pasted)."""
    out = boxes.copy()
    cut = np.flatnonzero(
        (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
    )
    if cut.size:
        pack = SpritePack.build(_take(sprites, cut.tolist()), boxes[cut, :2].astype(np.int64))
        out[cut] = field_extents(pack, width, height)
    return out


class SourceSprites:
    """A smear's source sprites: premultiplied and edge-shaped by the blender, and re-stained
    from the pool's stain to the smear's (stain harmonisation) as they are transformed.

    Preparing the source, before the rotation and rescaling, costs one preparation per
    distinct sprite of the smear instead of one per pasted cell; the premultiplied, shaped
    source is the same in every smear, so the pool keeps it (:meth:`Pool.derived`) and only
    the re-staining is done per smear, by :meth:`transform` while it reads each source.
    """

    def __init__(self, pool: Pool, cfg: GenerationConfig, appearance: dict[str, Any]) -> None:
        self.pool = pool
        self.shape = BLENDERS[cfg.render.blend].shape
        self.kind = f"shaped:{cfg.render.blend}"
        look = appearance if appearance else default_appearance(cfg.render)
        src = StainProfile.from_dict(look["source_stain"])
        dst = StainProfile.from_dict(look["stain"])
        self.stains = (src, dst) if look.get("harmonise", True) and src != dst else None

    def shaped(self, sprite_id: int) -> np.ndarray:
        """The premultiplied, edge-shaped source of ``sprite_id``, before re-staining (kept by
        the pool)."""
        return self.pool.derived(self.kind, sprite_id, self._shaped, persist=True)

    def _shaped(self, rgba: np.ndarray) -> np.ndarray:
        return self.shape(premultiply(rgba))

    def transform(
        self, sprite_ids: Sequence[int], angles: Sequence[float], flips: Sequence[bool],
        scales: Sequence[float],
    ) -> list[np.ndarray]:
        """Every cell's sprite transformed (:func:`~hemosynth.smear.warp.transform_many`):
        cell ``i`` is source ``sprite_ids[i]`` flipped, rotated and rescaled."""
        distinct = list(dict.fromkeys(sprite_ids))
        slot = {sid: k for k, sid in enumerate(distinct)}
        factors = harmonise_factors(*self.stains) if self.stains is not None else None
        return transform_many([self.shaped(s) for s in distinct], [slot[s] for s in sprite_ids],
                              angles, flips, scales, [self.bound(s) for s in distinct], factors)

    def bound(self, sprite_id: int) -> tuple[float, float, float]:
        """The source's :func:`~hemosynth.smear.sprite.alpha_circle` (kept by the pool): lets
        the transform skip pixels that cannot be opaque. Taken from the pool's own alpha: edge
        shaping and re-staining never widen its support, so the circle bounds them too."""
        c = self.pool.derived("alpha_circle", sprite_id,
                              lambda rgba: np.array(alpha_circle(rgba[:, :, 3])), persist=True)
        return float(c[0]), float(c[1]), float(c[2])


def prepare_sprites(plan: SmearPlan, pool: Pool, cfg: GenerationConfig) -> list[np.ndarray]:
    """The transformed, prepared sprites of ``plan`` (as ``plan_smear(keep_sprites=True)``)."""
    sources = SourceSprites(pool, cfg, plan.appearance)
    sprites = sources.transform(plan.sprite_ids.tolist(), plan.angles, plan.flips, plan.scales)
    return apply_strengths(sprites, plan.strengths, plan.appearance, cfg)
