"""Generation settings as frozen dataclasses, with YAML round-trip and validation.

Every option of ``hemosynth generate`` lives here, grouped in sections. A YAML file mirrors the
structure (see ``hemosynth config --defaults``); unknown keys and bad values raise
:class:`~hemosynth.errors.ConfigError` naming the dotted key at fault. Validation happens once,
when a config is built; the rest of the library trusts it.

Sampled intervals end in ``_range`` and are drawn uniformly per smear.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .taxonomy import LABEL_SETS, MAIN_TYPES, POOL_CLASSES, canonical_class

#: Default output scale: a 7.5 um red cell is 74 px across, as in the PBC images.
DEFAULT_UM_PER_PX = 7.5 / 74.0
#: Reference field of the paper's Table 2 counts (ALL-IDB1 image size, PBC scale).
REFERENCE_FIELD_PX = (2592, 1944)


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}")


def _check_range(value: tuple[float, float], key: str, lo: float, hi: float) -> None:
    _check(len(value) == 2, key, f"expected [low, high], got {list(value)}")
    a, b = value
    _check(lo <= a <= b <= hi, key, f"expected {lo} <= low <= high <= {hi}, got {list(value)}")


def _check_main_type(name: str, key: str) -> None:
    _check(name in MAIN_TYPES or name == "RBC", key,
           f"unknown main type {name!r}; choose from RBC, {', '.join(MAIN_TYPES)}")


@dataclass(frozen=True)
class Gaussian:
    """A per-field count distribution ``N(mean, sd)``, truncated at zero (see CountsConfig)."""

    mean: float
    sd: float

    def _validate(self, key: str) -> None:
        _check(self.mean >= 0, f"{key}.mean", f"must be >= 0, got {self.mean}")
        _check(self.sd >= 0, f"{key}.sd", f"must be >= 0, got {self.sd}")


@dataclass(frozen=True)
class CanvasConfig:
    """Output image geometry.

    Attributes
    ----------
    width, height : int
        Image size in pixels.
    um_per_px : float
        Output scale in micrometres per pixel; sprites are rescaled to it.
    """

    width: int = REFERENCE_FIELD_PX[0]
    height: int = REFERENCE_FIELD_PX[1]
    um_per_px: float = DEFAULT_UM_PER_PX

    def _validate(self, key: str) -> None:
        _check(16 <= self.width <= 20000, f"{key}.width", f"must be in 16..20000, got {self.width}")
        _check(
            16 <= self.height <= 20000, f"{key}.height", f"must be in 16..20000, got {self.height}"
        )
        _check(0.01 <= self.um_per_px <= 10, f"{key}.um_per_px", "must be in 0.01..10")

    @property
    def area_um2(self) -> float:
        """Field area in square micrometres."""
        return self.width * self.height * self.um_per_px**2


@dataclass(frozen=True)
class CountsConfig:
    """Per-smear cell counts (Algorithm 1, lines 2-4).

    The Gaussians are per *reference field* (2592 x 1944 px at the default scale, the paper's
    Table 2); mean and sd are multiplied by the ratio of the canvas area to the reference area
    in square micrometres when ``scale_with_area`` is true (the coefficient of variation is
    kept: fields differ mostly in cell density).

    Negative draws: with ``negative_rule: clip`` (default) a draw is rounded and clipped at 0,
    so a smear may have no platelets or no WBCs, as real fields do; with ``resample`` the draw
    is repeated until it is >= 0 (a truncated Gaussian, whose mean is higher than ``mean``).

    Nucleated RBCs draw from the WBC count: the WBC Gaussian gives the number of *nucleated*
    cells (white cells and nucleated red cells), which are then shared among the 13 WBC
    subtypes and Nucleated RBC. This follows laboratory practice (NRBCs are found during the
    white-cell differential and counted per 100 WBCs) and, in balanced mode, gives Nucleated
    RBC the same instance count as each WBC subtype.
    """

    rbc: Gaussian = Gaussian(669.0, 149.0)
    wbc: Gaussian = Gaussian(8.6, 10.5)
    platelet: Gaussian = Gaussian(4.3, 4.8)
    negative_rule: str = "clip"
    scale_with_area: bool = True
    #: hard cap on cells of one main type per smear (guards against absurd configs)
    max_per_type: int = 20000

    def _validate(self, key: str) -> None:
        for name in ("rbc", "wbc", "platelet"):
            getattr(self, name)._validate(f"{key}.{name}")
        _check(
            self.negative_rule in ("clip", "resample"),
            f"{key}.negative_rule",
            f"must be 'clip' or 'resample', got {self.negative_rule!r}",
        )
        _check(self.max_per_type >= 1, f"{key}.max_per_type", "must be >= 1")


@dataclass(frozen=True)
class SubtypeConfig:
    """How a smear's cells of one main type are shared among its subtypes (Algorithm 1, 5-11).

    Attributes
    ----------
    mode : str
        ``balanced`` (default): the paper's draw of a subtype count and shares, with *which*
        subtypes chosen to even out instance counts over the dataset (see
        :mod:`hemosynth.smear.counts`). ``paper``: subtypes chosen uniformly at random, as in
        Algorithm 1. ``weights``: each instance's subtype drawn from ``weights``.
    max_types : int or None
        Upper bound of SubTypesCount = Rand(1, Max_types); None means all subtypes of the type.
    min_share : float
        ``Min`` of the share draw Rand(Min, Max).
    weights : dict
        Class -> relative weight, for ``mode: weights``; missing classes weigh 0.
    exclude : list of str
        Subtypes never drawn (e.g. a pool without them).
    """

    mode: str = "balanced"
    max_types: int | None = None
    min_share: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    def _validate(self, key: str) -> None:
        _check(
            self.mode in ("balanced", "paper", "weights"),
            f"{key}.mode",
            f"must be balanced, paper or weights, got {self.mode!r}",
        )
        if self.max_types is not None:
            _check(self.max_types >= 1, f"{key}.max_types", "must be >= 1")
        _check(0 <= self.min_share < 1, f"{key}.min_share", "must be in [0, 1)")
        for name, w in self.weights.items():
            _canonical(name, f"{key}.weights")
            _check(w >= 0, f"{key}.weights.{name}", f"must be >= 0, got {w}")
        if self.mode == "weights":
            _check(sum(self.weights.values()) > 0, f"{key}.weights", "needs a positive weight")
        for name in self.exclude:
            _canonical(name, f"{key}.exclude")


@dataclass(frozen=True)
class PlacementConfig:
    """Where cells are pasted (Algorithm 1's placement loop).

    Attributes
    ----------
    strategy : str
        ``grid`` (exact, default), ``lsh`` (the paper's), ``brute`` (exact reference),
        ``random`` or ``blocks`` (the paper's naive approaches; they check no overlap).
    iou_threshold_range : (float, float)
        T is drawn uniformly from this range once per smear; a cell is accepted when its
        box's IoU with every neighbour found is <= T. The default (0.05, 0.25) was chosen
        against real smears: in the relabelled BCCD test split the median IoU of a red cell
        with its most-overlapping neighbour is 0.054 and 87% of red cells overlap another,
        while (0.0, 0.1) gave 0.023 and 70%, and dropped 12% of the paper's red cells.
    max_attempts : int
        Paste points tried per cell before it is dropped and counted.
    blocks : (int, int)
        M x N virtual blocks (columns, rows) for ``blocks``.
    lsh_projections : int
        L, the number of random binary projections of ``lsh``.
    lsh_nearest : int
        Keep only the k nearest bucket members as candidates (0 = all of them).
    lsh_distance : str
        ``euclidean`` or ``cosine`` (NearPy's default), the distance for ``lsh_nearest``.
    lsh_warmup : int
        The first cells pasted without a query (60 in the paper).
    keep_inside : list of str
        Main types whose cells are kept wholly inside the field; others may be cut by the
        border, as in real fields (their boxes are clipped to the image).
    rotate, flip : bool
        Draw a rotation angle in [0, 360) / a mirror flip for every pasted cell.
    scale_jitter_range : (float, float)
        Extra size factor drawn per cell on top of the sprite's scale.
    max_cover : dict
        Main type (``RBC``, ``WBC``, ``Platelet``, ``Nucleated RBC``) -> the largest share of
        such a cell's box that one neighbour's box may cover (checked by ``grid``, ``brute``
        and ``lsh`` besides T). IoU misses a small cell lying on a big one: a platelet on a
        red cell has IoU about 0.1 with it. Empty (default) = no limit, the paper's rule. In
        BCCD 10-12% of the platelets have their centre on a red cell's box; with T alone about
        46% of pasted ones did; ``Platelet: 0.55`` gives about 10% (0.3 gives 0.5%).
    """

    strategy: str = "grid"
    iou_threshold_range: tuple[float, float] = (0.05, 0.25)
    max_attempts: int = 50
    blocks: tuple[int, int] = (8, 6)
    lsh_projections: int = 10
    lsh_nearest: int = 10
    lsh_distance: str = "euclidean"
    lsh_warmup: int = 60
    keep_inside: tuple[str, ...] = ("WBC", "Nucleated RBC")
    rotate: bool = True
    flip: bool = True
    scale_jitter_range: tuple[float, float] = (1.0, 1.0)
    max_cover: dict[str, float] = field(default_factory=dict)

    def _validate(self, key: str) -> None:
        from .smear.placement import STRATEGIES

        _check(
            self.strategy in STRATEGIES,
            f"{key}.strategy",
            f"unknown strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}",
        )
        _check_range(self.iou_threshold_range, f"{key}.iou_threshold_range", 0.0, 1.0)
        _check(1 <= self.max_attempts <= 100000, f"{key}.max_attempts", "must be in 1..100000")
        _check(
            len(self.blocks) == 2 and min(self.blocks) >= 1, f"{key}.blocks", "expected [M, N] >= 1"
        )
        _check(1 <= self.lsh_projections <= 64, f"{key}.lsh_projections", "must be in 1..64")
        _check(self.lsh_nearest >= 0, f"{key}.lsh_nearest", "must be >= 0")
        _check(
            self.lsh_distance in ("euclidean", "cosine"),
            f"{key}.lsh_distance",
            "must be euclidean or cosine",
        )
        _check(self.lsh_warmup >= 0, f"{key}.lsh_warmup", "must be >= 0")
        for t in self.keep_inside:
            _check(
                t in MAIN_TYPES or t == "RBC",
                f"{key}.keep_inside",
                f"unknown main type {t!r}; choose from RBC, {', '.join(MAIN_TYPES)}",
            )
        _check_range(self.scale_jitter_range, f"{key}.scale_jitter_range", 0.1, 10.0)
        for t, v in self.max_cover.items():
            _check_main_type(t, f"{key}.max_cover")
            _check(isinstance(v, (int, float)) and 0 < v <= 1, f"{key}.max_cover.{t}",
                   f"must be in (0, 1], got {v!r}")


@dataclass(frozen=True)
class RenderConfig:
    """How the planned cells are drawn: stain, background, optics and edge blending.

    Per-smear values are drawn while planning (see :mod:`hemosynth.smear.appearance`) and
    stored in the plan; amounts below are the upper ends of those draws.

    Attributes
    ----------
    stain_profile : str
        The smear's stain: ``pbc`` (PBC / CellaVision look, warm cream field), ``bccd``
        (BCCD look, grey-green field) or ``classic`` (see :mod:`hemosynth.smear.stain`).
    source_stain : str
        The profile the pool's sprites are stained in (the atlas and PBC pools: ``pbc``).
    harmonise : bool
        Re-stain every pasted sprite from ``source_stain`` to the smear's stain, so cells and
        background look like one slide.
    stain_variation : float
        Per-smear variation of dye strengths and hues, drawn within +- this fraction
        (0 = every smear has exactly the profile's stain).
    background_rgb : (int, int, int) or None
        Plasma colour overriding the profile's background (None = the profile's).
    background_unevenness : float
        Optical-density amplitude (0-1) of the plasma's low-frequency unevenness; each smear
        draws between half and all of it.
    optics : bool
        Master switch of defocus, vignetting and sensor noise.
    blur_um : float
        Blur of the whole field (Gaussian sigma, micrometres): the target lab's optical
        resolution and camera softness, applied before the defocus. 0 (default) keeps the
        pool's own sharpness; ``benchmarks/platelets.py`` measures edge sharpness on a real
        set, to choose it (BCCD-like fields: 0.12).
    defocus_um : float
        Largest extra blur (Gaussian sigma, micrometres) of the slight defocus that varies
        over the field; 0 = off.
    vignetting : float
        Relative brightness lost in the farthest corner (illumination fall-off); 0 = off.
    noise_sd : float
        Sensor noise in grey levels at full brightness (scales with the square root of the
        signal); 0 = off.
    blend : str
        Sprite edge blending: ``feather`` (default, alpha edges softened by a distance ramp),
        ``alpha`` (plain alpha), ``gaussian`` (Gaussian-blurred alpha edges) or ``poisson``
        (seamless cloning, masked to the sprite).
    cell_strength : dict
        Main type (``RBC``, ``WBC``, ``Platelet``, ``Nucleated RBC``) -> ``[lo, hi]``: each
        such cell's optical density over the plasma is multiplied by a factor drawn in that
        range (below 1: paler, less saturated and softer; above 1: darker), so one class can
        be matched to a lab where it stains more weakly or strongly than the pool's cells.
        Empty (default) = every cell as the pool has it. ``benchmarks/platelets.py`` measures
        contrast and chroma on a real set, to choose it.
    """

    stain_profile: str = "pbc"
    source_stain: str = "pbc"
    harmonise: bool = True
    stain_variation: float = 0.08
    background_rgb: tuple[int, int, int] | None = None
    background_unevenness: float = 0.025
    optics: bool = True
    blur_um: float = 0.0
    defocus_um: float = 0.1
    vignetting: float = 0.08
    noise_sd: float = 2.0
    blend: str = "feather"
    cell_strength: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _validate(self, key: str) -> None:
        from .smear.render import BLENDERS
        from .smear.stain import PROFILES

        for name in ("stain_profile", "source_stain"):
            value = getattr(self, name)
            _check(value in PROFILES, f"{key}.{name}",
                   f"unknown stain profile {value!r}; choose from {', '.join(PROFILES)}")
        _check(0 <= self.stain_variation <= 0.5, f"{key}.stain_variation", "must be in 0..0.5")
        if self.background_rgb is not None:
            _check(
                len(self.background_rgb) == 3
                and all(0 <= v <= 255 for v in self.background_rgb),
                f"{key}.background_rgb",
                "expected three values in 0..255 (or null for the profile's)",
            )
        _check(0 <= self.background_unevenness <= 1, f"{key}.background_unevenness", "0..1")
        _check(0 <= self.blur_um <= 5, f"{key}.blur_um", "must be in 0..5")
        _check(0 <= self.defocus_um <= 5, f"{key}.defocus_um", "must be in 0..5")
        _check(0 <= self.vignetting < 1, f"{key}.vignetting", "must be in [0, 1)")
        _check(0 <= self.noise_sd <= 64, f"{key}.noise_sd", "must be in 0..64")
        _check(
            self.blend in BLENDERS,
            f"{key}.blend",
            f"unknown blend {self.blend!r}; choose from {', '.join(BLENDERS)}",
        )
        for t, v in self.cell_strength.items():
            _check_main_type(t, f"{key}.cell_strength")
            _check_range(v, f"{key}.cell_strength.{t}", 0.05, 4.0)


@dataclass(frozen=True)
class OutputConfig:
    """What is written.

    Attributes
    ----------
    image_format : str
        ``jpg`` (default) or ``png``.
    jpeg_quality : int
        JPEG quality, 1-100.
    label_sets : list of str
        Label sets written in the same pass (``main``, ``sub``, ``main+rbc``).
    formats : list of str
        Annotation formats: ``yolo``, ``coco``, ``voc``.
    coco_masks : bool
        Store each instance's visible mask as RLE in the COCO files.
    val_fraction : float
        Share of smears listed as validation in the YOLO ``data.yaml`` (0 = train and val
        both list every image).
    min_visible : float
        Cells whose visible fraction (after occlusion and border cut) is below this are not
        labelled (they are still drawn).
    box_margin : dict
        Main type (``RBC``, ``WBC``, ``Platelet``, ``Nucleated RBC``) -> a margin added to
        each side of such a cell's annotation box, as a fraction of the box's width (left,
        right) and height (top, bottom), clipped to the field: a target lab's box convention
        (BCCD draws platelet boxes about 1.8 times the stained dot). Empty (default) = tight
        boxes; the records keep the tight box as ``tight_box``.
    """

    image_format: str = "jpg"
    jpeg_quality: int = 95
    label_sets: tuple[str, ...] = ("main", "sub", "main+rbc")
    formats: tuple[str, ...] = ("yolo", "coco")
    coco_masks: bool = False
    val_fraction: float = 0.0
    min_visible: float = 0.0
    box_margin: dict[str, float] = field(default_factory=dict)

    def _validate(self, key: str) -> None:
        _check(
            self.image_format in ("jpg", "png"),
            f"{key}.image_format",
            f"must be jpg or png, got {self.image_format!r}",
        )
        _check(1 <= self.jpeg_quality <= 100, f"{key}.jpeg_quality", "must be in 1..100")
        _check(len(self.label_sets) > 0, f"{key}.label_sets", "needs at least one label set")
        for s in self.label_sets:
            _check(s in LABEL_SETS, f"{key}.label_sets", f"unknown label set {s!r}")
        from .formats import WRITERS

        _check(len(self.formats) > 0, f"{key}.formats", "needs at least one format")
        for f in self.formats:
            _check(f in WRITERS, f"{key}.formats", f"unknown format {f!r}; choose from "
                   f"{', '.join(WRITERS)}")
        _check(0 <= self.val_fraction < 1, f"{key}.val_fraction", "must be in [0, 1)")
        _check(0 <= self.min_visible <= 1, f"{key}.min_visible", "must be in [0, 1]")
        for t, v in self.box_margin.items():
            _check_main_type(t, f"{key}.box_margin")
            _check(isinstance(v, (int, float)) and 0 <= v <= 1, f"{key}.box_margin.{t}",
                   f"must be in [0, 1], got {v!r}")


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that determines a generated dataset (together with the pool's content).

    Attributes
    ----------
    count : int
        Number of smears.
    seed : int
        Master seed; smear ``i`` draws from ``SeedSequence([seed, i])``.
    pool : str
        ``atlas`` (the built-in procedural pool) or the path of a pool folder.
    """

    count: int = 10
    seed: int = 0
    pool: str = "atlas"
    canvas: CanvasConfig = CanvasConfig()
    counts: CountsConfig = CountsConfig()
    subtypes: SubtypeConfig = SubtypeConfig()
    placement: PlacementConfig = PlacementConfig()
    render: RenderConfig = RenderConfig()
    output: OutputConfig = OutputConfig()

    def __post_init__(self) -> None:
        _check(1 <= self.count <= 10_000_000, "count", f"must be >= 1, got {self.count}")
        _check(0 <= self.seed < 2**63, "seed", f"must be in 0..2**63-1, got {self.seed}")
        for f in fields(self):
            v = getattr(self, f.name)
            if dataclasses.is_dataclass(v):
                v._validate(f.name)

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples), as written to YAML and the manifest."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GenerationConfig:
        """Build and validate a config from a (partial) nested dict.

        Raises
        ------
        ConfigError
            On an unknown key (named with its dotted path) or a bad value.
        """
        return _from_plain(cls, data or {}, "")

    def replace(self, **changes: Any) -> GenerationConfig:
        """Copy with dotted-key changes, e.g. ``replace(**{"placement.strategy": "lsh"})``."""
        data = self.to_dict()
        for dotted, value in changes.items():
            node = data
            *parents, last = dotted.split(".")
            for p in parents:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"{dotted}: unknown key")
                node = node[p]
            if last not in node:
                raise ConfigError(f"{dotted}: unknown key")
            node[last] = value
        return GenerationConfig.from_dict(data)


def _canonical(name: str, key: str) -> str:
    try:
        return canonical_class(name)
    except ConfigError as e:
        raise ConfigError(f"{key}: {e}") from None


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _from_plain(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for k in data:
        if k not in known:
            where = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        kwargs[k] = _coerce(hints[k], v, key)
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix or 'config'}: {e}") from None
    if prefix and hasattr(obj, "_validate"):
        obj._validate(prefix)
    return obj


def _coerce(tp: Any, v: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(v, (list, tuple)) and tp is Gaussian and len(v) == 2:
            v = {"mean": v[0], "sd": v[1]}
        return _from_plain(tp, v, key)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], v, key)
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {v!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], x, key) for x in v)
        if len(v) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {list(v)}")
        return tuple(_coerce(a, x, key) for a, x in zip(args, v, strict=True))
    if origin is dict:
        if not isinstance(v, dict):
            raise ConfigError(f"{key}: expected a mapping, got {v!r}")
        return {str(k): _coerce(args[1], x, f"{key}.{k}") for k, x in v.items()}
    if tp is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{key}: expected true or false, got {v!r}")
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise ConfigError(f"{key}: expected an integer, got {v!r}")
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {v!r}")
        return float(v)
    if tp is str:
        if not isinstance(v, (str, Path)):
            raise ConfigError(f"{key}: expected a string, got {v!r}")
        return str(v)
    return v


def load_config(path: str | Path | None = None, **overrides: Any) -> GenerationConfig:
    """Read a YAML config file (or the defaults) and apply dotted-key overrides.

    Parameters
    ----------
    path : str or Path, optional
        YAML file; every key is optional.
    **overrides
        Dotted keys, e.g. ``{"placement.strategy": "lsh"}``; None values are ignored.

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or a key or value is wrong.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config ({e.strerror})") from None
        import yaml  # here: worker processes never read YAML (its import is ~10 ms of their start)

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
    cfg = GenerationConfig.from_dict(data)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace(**changes) if changes else cfg


def parse_settings(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` (values in YAML) -> dotted-key overrides for :func:`load_config`.

    Raises
    ------
    ConfigError
        On an item without ``=`` or with a value that is not valid YAML.

    Examples
    --------
    >>> parse_settings(["render.blur_um=0.1", "output.formats=[coco, yolo]"])
    {'render.blur_um': 0.1, 'output.formats': ['coco', 'yolo']}
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{item!r}: expected KEY=VALUE, e.g. render.blur_um=0.1")
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{key}: value {text!r} is not valid YAML") from None
    return out


def dump_config(cfg: GenerationConfig) -> str:
    """The config as YAML text (every key, defaults included)."""
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


__all__ = [
    "DEFAULT_UM_PER_PX",
    "POOL_CLASSES",
    "REFERENCE_FIELD_PX",
    "CanvasConfig",
    "CountsConfig",
    "Gaussian",
    "GenerationConfig",
    "OutputConfig",
    "PlacementConfig",
    "RenderConfig",
    "SubtypeConfig",
    "dump_config",
    "load_config",
    "parse_settings",
]
