"""The statistics report: every figure as JSON, plots, and a one-page Markdown summary.

:func:`summarize` turns the measures of a generated set (and optionally a real one) into a
JSON-ready dict; :func:`write_report` writes ``stats.json``, ``plots/*.png`` and ``report.md``
(which embeds the plots). :func:`dataset_stats` does all of it for a dataset folder.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..fileio import atomic_write_json, atomic_write_text
from ..taxonomy import POOL_CLASSES
from .compare import curve_distance, distances
from .counts import (
    COUNT_GROUPS,
    balance,
    configured_pmf,
    count_histogram,
    discrete_ks,
    label_set_instances,
)
from .layout import GROUPS
from .loaders import SetMeasures, load_generated, load_real
from .spatial import l_function, pair_correlation, ripley_k

#: largest Ripley distance (micrometres); also capped at 40 % of the smallest field side
R_MAX_UM = 20.0
#: Ripley bin width (micrometres)
R_STEP_UM = 0.25
#: box gap that counts as touching (micrometres)
TOUCH_UM = 0.5
#: fewest ordered pairs (sum of n (n - 1)) for which L(r) is compared
MIN_PAIRS = 200

#: which figures a real set's missing boxes distort, and how (for the report)
MISSING_BOXES_NOTE = (
    "Real sets with missing boxes (BCCD's original VOC labels miss about half the red cells) "
    "distort: per-image RBC counts and densities (too low); coverage (too low); RBC "
    "nearest-neighbour distances (too long); the touching/overlapping shares and max-IoU "
    "distributions (too low: the cells left unboxed are mostly the overlapping and cut ones); "
    "Ripley's L of all cells and of RBC (thinning by chance keeps L, but thinning of crowded "
    "cells makes the layout look more regular). Box sizes, WBC and platelet figures are barely "
    "affected. Loose boxes and boxes spanning two cells (both in BCCD and its relabel) inflate "
    "box sizes and overlaps."
)


def r_edges_for(short_sides_um: list[float]) -> np.ndarray:
    """Ripley bins from 0 to ``min(R_MAX_UM, 0.4 * smallest field side)``."""
    r_max = min([R_MAX_UM] + [0.4 * s for s in short_sides_um if s > 0])
    n = max(4, int(math.floor(r_max / R_STEP_UM)))
    return np.linspace(0.0, n * R_STEP_UM, n + 1)


def _q(x: np.ndarray) -> dict[str, float | int]:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"n": 0}
    p = np.percentile(x, [5, 25, 50, 75, 95])
    return {
        "n": int(x.size), "mean": round(float(x.mean()), 4), "sd": round(float(x.std()), 4),
        "p5": round(float(p[0]), 4), "p25": round(float(p[1]), 4),
        "median": round(float(p[2]), 4), "p75": round(float(p[3]), 4),
        "p95": round(float(p[4]), 4),
    }


def _r(v: float, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


# ------------------------------------------------------------------------ per-set samples


def samples(sm: SetMeasures) -> dict[str, dict[str, np.ndarray]]:
    """Per-group samples of every compared distribution (labelled cells only).

    Returns
    -------
    dict
        Figure name -> {group: 1-D sample}; figures ``diameter_um`` (boxes not touching the
        border), ``width_um``, ``height_um``, ``nn_um`` (border-corrected), ``max_iou``,
        ``density`` (cells per 1000 um^2 per field), and ``coverage`` under group ``all``.
    """
    lab = sm.labelled
    whole = lab & ~sm.border
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in
                                             ("diameter_um", "width_um", "height_um", "nn_um",
                                              "max_iou", "density")}
    area = sm.width * sm.height * sm.um_per_px**2 / 1000.0
    counts = sm.field_counts(labelled_only=True)
    for k, g in enumerate(GROUPS):
        sel = sm.groups == k
        out["diameter_um"][g] = ((sm.width_um + sm.height_um) / 2)[sel & whole]
        out["width_um"][g] = sm.width_um[sel & whole]
        out["height_um"][g] = sm.height_um[sel & whole]
        out["nn_um"][g] = sm.nn_um[sel & lab & sm.nn_ok]
        out["max_iou"][g] = sm.max_iou[sel & lab]
        out["density"][g] = counts[:, k] / area if sm.n_fields else np.empty(0)
    out["nn_um"]["all"] = sm.nn_um[lab & sm.nn_ok]
    out["max_iou"]["all"] = sm.max_iou[lab]
    out["density"]["all"] = counts.sum(1) / area if sm.n_fields else np.empty(0)
    out["coverage"] = {"all": sm.coverage}
    return out


def _present(sm: SetMeasures) -> list[str]:
    n = np.bincount(sm.groups[sm.labelled], minlength=len(GROUPS))
    return [g for k, g in enumerate(GROUPS) if n[k] > 0]


def ripley(sm: SetMeasures) -> dict[str, Any]:
    """Pooled Ripley's K, L(r) - r and g(r) for all cells and each group with pairs."""
    r = sm.r_edges[1:]
    out: dict[str, Any] = {"r_um": r.round(4).tolist()}
    for k, name in enumerate(("all", *GROUPS)):
        if sm.ripley is None or sm.n_pairs[k] <= 0:
            continue
        kk = ripley_k(sm.ripley[k], sm.n_pairs[k])
        out[name] = {
            "L_minus_r": (l_function(kk) - r).round(4).tolist(),
            "g": pair_correlation(kk, sm.r_edges).round(4).tolist(),
            "pairs": float(sm.n_pairs[k]),
        }
    return out


def contact(sm: SetMeasures) -> dict[str, Any]:
    """Share of cells of group a overlapping / touching-or-overlapping cells of group b."""
    out: dict[str, Any] = {"overlap": {}, "touch_or_overlap": {}}
    lab = sm.labelled
    for k, a in enumerate(GROUPS):
        sel = (sm.groups == k) & lab
        if not sel.any():
            continue
        for key, flags in (("overlap", sm.overlaps), ("touch_or_overlap", sm.touches)):
            f = flags[sel]
            row = {b: _r(f[:, j].mean()) for j, b in enumerate(GROUPS)}
            row["any"] = _r(f.any(1).mean())
            out[key][a] = row
    return out


def set_summary(sm: SetMeasures) -> dict[str, Any]:
    """Every figure of one set that does not need the config (JSON-ready)."""
    s = samples(sm)
    present = _present(sm)
    counts = sm.field_counts(labelled_only=True)
    out: dict[str, Any] = {
        "path": sm.name,
        "kind": sm.kind,
        "fields": sm.n_fields,
        "cells": int(sm.labelled.sum()),
        "field_px": sorted({(int(w), int(h)) for w, h in zip(sm.width, sm.height,
                                                                strict=True)}),
        "um_per_px": _q(sm.um_per_px),
        "instances_by_group": {g: int(counts[:, k].sum()) for k, g in enumerate(GROUPS)},
        "per_field_counts": {g: count_histogram(counts[:, k]) for k, g in enumerate(GROUPS)
                             if g in present},
        "sizes_um": {g: {"diameter": _q(s["diameter_um"][g]), "width": _q(s["width_um"][g]),
                         "height": _q(s["height_um"][g])} for g in present},
        "overlap": {
            "max_iou": {g: {**_q(s["max_iou"][g]),
                            "share_positive": _r((s["max_iou"][g] > 0).mean())}
                        for g in ("all", *present)},
            **contact(sm),
        },
        "spacing": {
            "nn_um": {g: _q(s["nn_um"][g]) for g in ("all", *present)},
            "nn_border_corrected_share_kept": _r(sm.nn_ok[sm.labelled].mean())
            if sm.labelled.any() else None,
            "ripley": ripley(sm),
            "coverage_boxes": _q(sm.coverage),
        },
        "density_per_1000um2": {g: _q(s["density"][g]) for g in ("all", *present)},
    }
    if np.isfinite(sm.cell_coverage).any():
        out["spacing"]["coverage_cells"] = _q(sm.cell_coverage)
    return out


def generated_counts(sm: SetMeasures) -> dict[str, Any]:
    """Instances per label set, balance, per-smear counts against the configured Gaussians."""
    from ..config import GenerationConfig
    from ..smear.counts import area_factor, scaled_gaussian

    cfg = GenerationConfig.from_dict(sm.info.get("config") or {})
    inst = label_set_instances(sm.pool_counts(labelled_only=True))
    out: dict[str, Any] = {
        "instances": inst,
        "balance_max_over_min": balance(inst["sub"]),
        "placed_by_class": dict(zip(POOL_CLASSES, sm.pool_counts(False).tolist(), strict=True)),
    }
    if sm.requested is None:
        return out
    factor = area_factor(cfg)
    per: dict[str, Any] = {}
    placed_pool = np.zeros_like(sm.requested)
    np.add.at(placed_pool, (sm.cell_field[sm.pool >= 0], sm.pool[sm.pool >= 0]), 1)
    for name, (key, classes) in COUNT_GROUPS.items():
        idx = [POOL_CLASSES.index(c) for c in classes]
        req = sm.requested[:, idx].sum(1)
        pla = placed_pool[:, idx].sum(1)
        drp = sm.dropped[:, idx].sum(1)
        g = getattr(cfg.counts, key)
        mean, sd = scaled_gaussian(g, factor)
        kmax = int(max(req.max(initial=0), mean + 4 * sd + 1))
        pmf = configured_pmf(mean, sd, kmax, cfg.counts.negative_rule)
        per[name] = {
            "configured": {"mean": round(mean, 4), "sd": round(sd, 4),
                           "rule": cfg.counts.negative_rule, "area_factor": round(factor, 6)},
            "requested": {**_q(req), "hist": count_histogram(req, kmax)},
            "placed": {**_q(pla), "hist": count_histogram(pla, kmax)},
            "dropped": {**_q(drp), "total": int(drp.sum()),
                        "share": _r(drp.sum() / max(req.sum(), 1))},
            "configured_pmf": [round(float(p), 6) for p in pmf],
            "ks_requested_vs_configured": _r(discrete_ks(req, pmf)),
            "ks_placed_vs_configured": _r(discrete_ks(pla, pmf)),
        }
    out["per_smear"] = per
    dropped = dict(zip(POOL_CLASSES, sm.dropped.sum(0).tolist(), strict=True))
    out["dropped_by_class"] = {c: v for c, v in dropped.items() if v}
    out["smears_with_drops"] = int((sm.dropped.sum(1) > 0).sum())
    return out


def compare_sets(gen: SetMeasures, real: SetMeasures) -> list[dict[str, Any]]:
    """Distances between every compared figure of the generated and the real set.

    Returns
    -------
    list of dict
        One row per (figure, group): ``figure``, ``group``, ``unit``, ``ks``, ``wasserstein``,
        ``n_generated``, ``n_real``, ``generated_median``, ``real_median``; Ripley rows give
        ``sup_abs_diff`` of L(r) - r instead, and contact rows the share difference.
    """
    sg, sr = samples(gen), samples(real)
    units = {"diameter_um": "um", "width_um": "um", "height_um": "um", "nn_um": "um",
             "max_iou": "IoU", "density": "cells/1000 um^2", "coverage": "share"}
    rows: list[dict[str, Any]] = []
    for fig, unit in units.items():
        for g in sg[fig]:
            if g not in sr[fig]:
                continue
            a, b = sg[fig][g], sr[fig][g]
            if np.size(a) == 0 or np.size(b) == 0:
                continue
            d = distances(a, b)
            rows.append({
                "figure": fig, "group": g, "unit": unit, "ks": _r(d["ks"]),
                "wasserstein": _r(d["wasserstein"]), "n_generated": d["n_generated"],
                "n_real": d["n_real"], "generated_median": _r(np.median(a)),
                "real_median": _r(np.median(b)),
            })
    rg, rr = ripley(gen), ripley(real)
    n = min(len(rg["r_um"]), len(rr["r_um"]))
    for g in ("all", *GROUPS):
        # L of a class with few pairs is noise: compare only with MIN_PAIRS ordered pairs
        if g in rg and g in rr and min(rg[g]["pairs"], rr[g]["pairs"]) >= MIN_PAIRS:
            rows.append({
                "figure": "L_minus_r", "group": g, "unit": "um",
                "sup_abs_diff": _r(curve_distance(rg[g]["L_minus_r"][:n],
                                                  rr[g]["L_minus_r"][:n])),
                "generated_min": _r(np.nanmin(rg[g]["L_minus_r"][:n])),
                "real_min": _r(np.nanmin(rr[g]["L_minus_r"][:n])),
            })
    cg, cr = contact(gen), contact(real)
    for key in ("overlap", "touch_or_overlap"):
        for g in cg[key]:
            if g in cr[key]:
                a, b = cg[key][g]["any"], cr[key][g]["any"]
                rows.append({"figure": f"share_{key}", "group": g, "unit": "share",
                             "generated": a, "real": b,
                             "abs_diff": _r(abs(a - b)) if None not in (a, b) else None})
    return rows


def summarize(gen: SetMeasures, real: SetMeasures | None = None) -> dict[str, Any]:
    """The whole report as a JSON-ready dict."""
    out: dict[str, Any] = {
        "generated": {**set_summary(gen), **generated_counts(gen),
                      "manifest": gen.info.get("manifest", {})},
        "settings": {"r_max_um": float(gen.r_edges[-1]), "r_step_um": R_STEP_UM,
                     "touch_um": TOUCH_UM},
    }
    if real is not None:
        out["real"] = {**set_summary(real), "read": real.info}
        out["comparison"] = compare_sets(gen, real)
        out["missing_boxes_note"] = MISSING_BOXES_NOTE
    return out


# --------------------------------------------------------------------------------- writing


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    """The one-page Markdown report (``plots``: plot name -> relative path)."""
    gen = report["generated"]
    real = report.get("real")
    lines = ["# hemosynth dataset statistics", ""]
    lines.append(
        f"Generated: `{gen['path']}`: {gen['fields']} smears, {gen['cells']} labelled cells, "
        f"fields {', '.join(f'{w}x{h}' for w, h in gen['field_px'])} px at "
        f"{gen['um_per_px'].get('median', 0):.4g} um/px."
    )
    if real:
        rd = real["read"]
        lines.append(
            f"Real: `{real['path']}` ({rd.get('format')}"
            + (f", split {rd['split']}" if rd.get("split") else "")
            + f"): {real['fields']} images, {real['cells']} boxes, "
            f"{rd['um_per_px']:.4g} um/px ({rd['um_per_px_source']}); class map "
            + ", ".join(f"{k} -> {v or 'ignored'}" for k, v in rd["map"].items()) + "."
        )
    lines.append("")
    bal = gen.get("balance_max_over_min", {})
    inst = gen.get("instances", {})
    if inst:
        lines.append(
            "**Instances** (label set main): "
            + ", ".join(f"{k} {v}" for k, v in inst["main"].items())
            + f"; RBC {inst['main+rbc']['RBC']}. Balance max/min over subtypes: "
            + ", ".join(f"{k} {_fmt(v) if v is not None else 'inf (a subtype has none)'}"
                        for k, v in bal.items()) + "."
        )
    per = gen.get("per_smear")
    if per:
        lines.append(
            "**Per smear** (requested vs configured, KS): "
            + "; ".join(f"{k} {v['requested']['mean']:.3g} vs N({v['configured']['mean']:.3g}, "
                        f"{v['configured']['sd']:.3g}), KS {_fmt(v['ks_requested_vs_configured'])}"
                        f", dropped {v['dropped']['total']} "
                        f"({100 * (v['dropped']['share'] or 0):.1f}%)"
                        for k, v in per.items()) + "."
        )
    lines.append("")
    if real and report.get("comparison"):
        lines += ["## Generated vs real", "",
                  "| figure | group | generated | real | KS | Wasserstein / diff |",
                  "|---|---|---|---|---|---|"]
        for row in report["comparison"]:
            if "ks" in row:
                lines.append(
                    f"| {row['figure']} ({row['unit']}) | {row['group']} | "
                    f"{_fmt(row['generated_median'])} | {_fmt(row['real_median'])} | "
                    f"{_fmt(row['ks'])} | {_fmt(row['wasserstein'])} |"
                )
            elif "sup_abs_diff" in row:
                lines.append(
                    f"| min of L(r)-r (um) | {row['group']} | {_fmt(row['generated_min'])} | "
                    f"{_fmt(row['real_min'])} | - | sup diff {_fmt(row['sup_abs_diff'])} |"
                )
            else:
                lines.append(
                    f"| {row['figure']} | {row['group']} | {_fmt(row['generated'])} | "
                    f"{_fmt(row['real'])} | - | diff {_fmt(row['abs_diff'])} |"
                )
        lines += ["", "Generated and real columns are medians (shares for the contact rows). "
                  "KS is the two-sample Kolmogorov-Smirnov statistic (0 = same distribution, "
                  "1 = disjoint); Wasserstein is in the figure's unit.", "",
                  f"*Missing boxes.* {report['missing_boxes_note']}", ""]
    for name, rel in plots.items():
        lines.append(f"![{name}]({rel})")
    lines.append("")
    return "\n".join(lines)


def write_report(
    report: dict[str, Any], out: str | Path, gen: SetMeasures | None = None,
    real: SetMeasures | None = None, plots: bool = True,
) -> dict[str, Path]:
    """Write ``stats.json``, ``plots/*.png`` (with ``gen``) and ``report.md`` into ``out``.

    Returns
    -------
    dict
        ``json``, ``markdown`` and each plot's name -> the path written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plot_paths: dict[str, str] = {}
    if plots and gen is not None:
        from .plots import make_plots

        for name, p in make_plots(report, gen, real, out / "plots").items():
            written[name] = p
            plot_paths[name] = str(p.relative_to(out))
    atomic_write_json(out / "stats.json", report)
    written["json"] = out / "stats.json"
    atomic_write_text(out / "report.md", markdown(report, plot_paths))
    written["markdown"] = out / "report.md"
    return written


def dataset_stats(
    dataset: str | Path,
    out: str | Path | None = None,
    real: str | Path | None = None,
    real_options: dict[str, Any] | None = None,
    workers: int = 1,
    plots: bool = True,
    limit: int | None = None,
) -> dict[str, Any]:
    """Statistics of a generated dataset, optionally against a real annotated set.

    Parameters
    ----------
    dataset : path-like
        A generated dataset folder.
    out : path-like, optional
        Folder for ``stats.json``, ``plots/`` and ``report.md`` (nothing written if None).
    real : path-like, optional
        A real annotated set (VOC, YOLO or COCO).
    real_options : dict, optional
        Keyword arguments of :func:`hemosynth.stats.loaders.real_layouts` (``fmt``, ``names``,
        ``images``, ``split``, ``class_map``, ``um_per_px``).
    workers : int
        Processes for reading the records.
    plots : bool
        Draw the PNG plots (needs matplotlib, the ``plots`` extra).
    limit : int, optional
        Only the first ``limit`` smears.

    Returns
    -------
    dict
        The report (see :func:`summarize`).
    """
    from ..dataset import read_manifest

    manifest = read_manifest(dataset)
    canvas = manifest.get("config", {}).get("canvas", {})
    sides = [min(canvas.get("width", 0), canvas.get("height", 0)) * canvas.get("um_per_px", 0)]
    real_layouts_info = None
    if real is not None:
        from .loaders import real_layouts

        layouts, info = real_layouts(real, **(real_options or {}))
        sides += [min(lay.width, lay.height) * lay.um_per_px for lay in layouts]
        real_layouts_info = (layouts, info)
    r_edges = r_edges_for(sides)
    gen = load_generated(dataset, r_edges, TOUCH_UM, workers=workers, limit=limit)
    real_m = None
    if real_layouts_info is not None:
        from .loaders import measure_layouts

        real_m = measure_layouts(real_layouts_info[0], r_edges, str(real), "real",
                                 real_layouts_info[1], TOUCH_UM)
    report = summarize(gen, real_m)
    if out is not None:
        write_report(report, out, gen, real_m, plots=plots)
    return report


__all__ = [
    "MISSING_BOXES_NOTE",
    "compare_sets",
    "dataset_stats",
    "generated_counts",
    "load_real",
    "markdown",
    "r_edges_for",
    "samples",
    "set_summary",
    "summarize",
    "write_report",
]
