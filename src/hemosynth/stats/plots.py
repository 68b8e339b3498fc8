"""PNG plots of the statistics report (matplotlib, the ``plots`` extra).

matplotlib is imported lazily and used through its object API (``Figure`` on the Agg canvas):
no pyplot state, no GUI backend, no network (the bundled DejaVu fonts only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HemosynthError
from .layout import GROUPS
from .loaders import SetMeasures

GEN_STYLE = {"color": "#1f77b4", "label": "generated"}
REAL_STYLE = {"color": "#d62728", "label": "real"}


def _figure(ncols: int, nrows: int = 1, size: tuple[float, float] = (4.0, 3.2)) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise HemosynthError(
            "plots need matplotlib: pip install 'hemosynth[plots]' (or pass --no-plots)"
        ) from None
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def _colour(group: str) -> str:
    from ..preview import class_colour_hex

    return class_colour_hex(group)


def _ecdf(ax: Any, x: np.ndarray, **kw: Any) -> None:
    x = np.sort(np.asarray(x, float)[np.isfinite(x)])
    if x.size:
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", **kw)


def plot_instances(report: dict[str, Any], path: Path) -> Path:
    """Instances per class for the label sets main+rbc and sub (the paper's figure 5 view)."""
    gen = report["generated"]
    inst = gen.get("instances", {})
    fig, ax = _figure(2, size=(5.0, 4.2))
    mr = inst.get("main+rbc", gen["instances_by_group"])
    names = list(mr)
    ax[0, 0].bar(names, [mr[n] for n in names], color=[_colour(n) for n in names])
    ax[0, 0].set_yscale("log")
    ax[0, 0].set_title("instances per main type (log)")
    ax[0, 0].tick_params(axis="x", labelrotation=20)
    sub = inst.get("sub", {})
    if sub:
        names = list(sub)[::-1]
        ax[0, 1].barh(names, [sub[n] for n in names], color=[_colour(n) for n in names])
        bal = gen.get("balance_max_over_min", {})
        ax[0, 1].set_title("subtype instances; max/min " + ", ".join(
            f"{k} {v:.2f}" if v is not None else f"{k} inf" for k, v in bal.items()),
            fontsize=9)
        ax[0, 1].tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def plot_counts(report: dict[str, Any], real: SetMeasures | None, gen: SetMeasures,
                path: Path) -> Path:
    """Per-smear counts vs the configured distributions (the paper's figure 4 view)."""
    per = report["generated"].get("per_smear", {})
    fig, ax = _figure(max(1, len(per)))
    same_area = False
    if real is not None and real.n_fields and gen.n_fields:
        a_g = float(np.median(gen.width * gen.height * gen.um_per_px**2))
        a_r = float(np.median(real.width * real.height * real.um_per_px**2))
        same_area = abs(a_g - a_r) / a_g < 0.1
    groups_of = {"RBC": [0], "WBC + Nucleated RBC": [1, 3], "Platelet": [2]}
    for k, (name, d) in enumerate(per.items()):
        a = ax[0, k]
        req = np.asarray(d["requested"]["hist"], float)
        pla = np.asarray(d["placed"]["hist"], float)
        pmf = np.asarray(d["configured_pmf"], float)
        n = req.sum()
        xs = np.arange(len(req))
        a.bar(xs, req / n, width=1.0, alpha=0.45, color=GEN_STYLE["color"], label="requested")
        a.step(np.arange(len(pla)), pla / n, where="mid", color="k", lw=1, label="placed")
        a.plot(np.arange(len(pmf)), pmf, color="#ff7f0e", lw=1.5, label="configured")
        if same_area and real is not None:
            rc = real.field_counts(True)[:, groups_of[name]].sum(1)
            h = np.bincount(rc.astype(np.int64)) / max(len(rc), 1)
            a.step(np.arange(len(h)), h, where="mid", color=REAL_STYLE["color"], lw=1.5,
                   label="real")
        a.set_title(f"{name} per smear (dropped {d['dropped']['total']})", fontsize=9)
        a.set_xlabel("cells")
        a.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def _ecdf_per_group(ax, sg: dict[str, Any], sr: dict[str, Any] | None, key: str) -> None:
    """ECDFs of sample ``key`` per group (not "all"): generated solid, real dashed."""
    for g, x in sg[key].items():
        if g == "all" or not np.size(x):
            continue
        _ecdf(ax, x, color=_colour(g), label=f"{g} gen")
        if sr is not None and np.size(sr[key].get(g, [])):
            _ecdf(ax, sr[key][g], color=_colour(g), ls="--", label=f"{g} real")


def plot_overlap(gen: SetMeasures, real: SetMeasures | None, report: dict[str, Any],
                 path: Path) -> Path:
    """Max IoU with the most-overlapping neighbour, and contact shares per group."""
    from .report import samples

    fig, ax = _figure(2)
    sg = samples(gen)
    sr = samples(real) if real is not None else None
    _ecdf_per_group(ax[0, 0], sg, sr, "max_iou")
    ax[0, 0].set_xlabel("IoU with most-overlapping neighbour")
    ax[0, 0].set_ylabel("share of cells <= x")
    ax[0, 0].legend(fontsize=7, loc="lower right")
    rows = [("generated", report["generated"]["overlap"])]
    if "real" in report:
        rows.append(("real", report["real"]["overlap"]))
    groups = [g for g in GROUPS if g in rows[0][1]["touch_or_overlap"]]
    width = 0.8 / (2 * len(rows))
    for r, (label, ov) in enumerate(rows):
        for m, key in enumerate(("overlap", "touch_or_overlap")):
            vals = [(ov[key].get(g) or {}).get("any") or 0 for g in groups]
            off = (2 * r + m) * width - 0.4 + width / 2
            ax[0, 1].bar(np.arange(len(groups)) + off, vals, width,
                         label=f"{label}: {key.replace('_', ' ')}",
                         color=(GEN_STYLE if r == 0 else REAL_STYLE)["color"],
                         alpha=0.5 if m == 0 else 1.0)
    ax[0, 1].set_xticks(np.arange(len(groups)), groups, fontsize=8)
    ax[0, 1].set_ylabel("share of cells")
    ax[0, 1].set_title("cells overlapping / touching another", fontsize=9)
    ax[0, 1].legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_spacing(gen: SetMeasures, real: SetMeasures | None, report: dict[str, Any],
                 path: Path) -> Path:
    """Nearest-neighbour distances, L(r) - r and box coverage."""
    from .report import samples

    fig, ax = _figure(3)
    sg = samples(gen)
    sr = samples(real) if real is not None else None
    _ecdf_per_group(ax[0, 0], sg, sr, "nn_um")
    ax[0, 0].set_xlabel("nearest-neighbour distance (um, border-corrected)")
    ax[0, 0].legend(fontsize=7, loc="lower right")
    sets = [("gen", report["generated"]["spacing"]["ripley"], "-")]
    if "real" in report:
        sets.append(("real", report["real"]["spacing"]["ripley"], "--"))
    for label, rp, ls in sets:
        for g, col in (("all", "k"), ("RBC", _colour("RBC"))):
            if g in rp:
                ax[0, 1].plot(rp["r_um"], rp[g]["L_minus_r"], ls=ls, color=col,
                              label=f"{g} {label}")
    ax[0, 1].axhline(0, color="grey", lw=0.8)
    ax[0, 1].set_xlabel("r (um)")
    ax[0, 1].set_ylabel("L(r) - r (um)")
    ax[0, 1].set_title("Ripley's L, translation-corrected", fontsize=9)
    ax[0, 1].legend(fontsize=7, loc="lower right")
    bins = np.linspace(0, 1, 41)
    ax[0, 2].hist(gen.coverage, bins=bins, density=True, alpha=0.6, color=GEN_STYLE["color"],
                  label="generated")
    if real is not None:
        ax[0, 2].hist(real.coverage, bins=bins, density=True, histtype="step", lw=1.5,
                      color=REAL_STYLE["color"], label="real")
    ax[0, 2].set_xlabel("share of field covered by boxes")
    ax[0, 2].legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_sizes(gen: SetMeasures, real: SetMeasures | None, path: Path) -> Path:
    """Box diameters ((w + h) / 2, boxes not touching the border) per group, in um."""
    from .report import samples

    sg = samples(gen)
    sr = samples(real) if real is not None else None
    groups = [g for g in GROUPS if np.size(sg["diameter_um"][g])
              or (sr is not None and np.size(sr["diameter_um"][g]))]
    fig, ax = _figure(max(1, len(groups)), size=(3.2, 3.0))
    for k, g in enumerate(groups):
        a = ax[0, k]
        x = sg["diameter_um"][g]
        y = sr["diameter_um"][g] if sr is not None else np.empty(0)
        both = np.concatenate([x, y])
        bins = np.linspace(both.min() * 0.9, both.max() * 1.1, 30) if both.size else 10
        if np.size(x):
            a.hist(x, bins=bins, density=True, alpha=0.6, color=_colour(g), label="generated")
        if np.size(y):
            a.hist(y, bins=bins, density=True, histtype="step", lw=1.5,
                   color=REAL_STYLE["color"], label="real")
        a.set_title(f"{g} box diameter (um)", fontsize=9)
        a.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def make_plots(
    report: dict[str, Any], gen: SetMeasures, real: SetMeasures | None, folder: Path
) -> dict[str, Path]:
    """Draw every plot into ``folder``; returns plot name -> path."""
    folder = Path(folder)
    return {
        "instances": plot_instances(report, folder / "instances.png"),
        "per_smear_counts": plot_counts(report, real, gen, folder / "per_smear_counts.png"),
        "overlap": plot_overlap(gen, real, report, folder / "overlap.png"),
        "spacing": plot_spacing(gen, real, report, folder / "spacing.png"),
        "sizes": plot_sizes(gen, real, folder / "sizes.png"),
    }


__all__ = ["make_plots"]
