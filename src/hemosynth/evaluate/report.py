"""One table and one JSON for a set of arms (each arm's predictions stay in its folder).

``OUT/report.json`` holds every arm's result; ``OUT/report.md`` the table; each arm's
predictions are ``OUT/<arm>/predictions.json`` (COCO results with the test set's ids, scorable
again with ``hemosynth score``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_json, atomic_write_text


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _render(head: list[str], rows: list[list[str]], notes: list[str], markdown: bool) -> str:
    """A table (markdown pipes or aligned plain text) followed by its notes."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(head))]
        lines += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    return "\n".join(lines + notes)


def arms_table(results: Mapping[str, Mapping[str, Any]], classes: Sequence[str] | None = None,
               markdown: bool = True) -> str:
    """A table with one row per arm: mAP@0.5, mAP@0.5:0.95, AP@0.5 per class, budget, time.

    Parameters
    ----------
    results : mapping
        Row label -> an arm result (as :func:`~hemosynth.evaluate.arms.run_arm` returns).
    classes : sequence of str, optional
        Column order of the per-class APs (default: the first result's classes).
    markdown : bool
        Markdown pipes (True) or aligned plain text.
    """
    if not results:
        return "(no results)"
    first = next(iter(results.values()))
    classes = list(classes or first["scores"]["per_class"])
    head = ["arm", "mAP@0.5", "mAP@.5:.95", *[f"AP50 {c}" for c in classes],
            "images seen", "epochs", "train min"]
    rows = []
    for label, r in results.items():
        sc = r["scores"]
        pc = sc["per_class"]
        secs = r.get("train_seconds")
        rows.append([
            label, _f(sc["map50"]), _f(sc["map50_95"]),
            *[_f(pc.get(c, {}).get("ap50")) for c in classes],
            str(r["budget"]["images_seen"]), str(r["budget"]["epochs"]),
            "-" if secs is None else f"{secs / 60:.1f}",
        ])
    notes = []
    absent = sorted({c for r in results.values() for c in r["scores"]["absent"]})
    if absent:
        notes.append(f"absent from the test set, left out of the means: {', '.join(absent)}")
    for label, r in results.items():
        if r.get("unlearned"):
            notes.append(f"{label}: no detection of {', '.join(r['unlearned'])} scored 0.05 or "
                         "more: the detector did not learn it (a training failure, or "
                         "training data that hide the class; another seed tells which)")
    return _render(head, rows, notes, markdown)


def write_report(out: str | Path, results: Mapping[str, Mapping[str, Any]],
                 extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``out/report.json`` and ``out/report.md``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / "report.json", out / "report.md"
    atomic_write_json(j, {"arms": dict(results), **(extra or {})})
    test = next(iter(results.values()))["test"] if results else {}
    text = arms_table(results) + "\n"
    if test:
        text += "\nTest set: " + "; ".join(test.get("sources", [])) + "\n"
        for n in test.get("notes", []):
            text += f"- {n}\n"
    atomic_write_text(m, text)
    return j, m


def seeds_summary(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]
                  ) -> dict[str, dict[str, Any]]:
    """Mean and sample sd over seeds of each arm's mAP@0.5, mAP@0.5:0.95 and AP@0.5 per class.

    Parameters
    ----------
    per_seed : mapping
        Seed -> (arm -> result), as :func:`~hemosynth.evaluate.arms.run_comparison` returns.

    Returns
    -------
    dict
        Arm -> ``{"seeds": [...], "map50": {"mean", "sd", "values"}, "map50_95": ...,
        "per_class": {class: {...}}, "unlearned": {seed: [classes]}}``; sd is None for one
        seed.
    """
    def stats(values: list[float]) -> dict[str, Any]:
        m = sum(values) / len(values)
        sd = (math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
              if len(values) > 1 else None)
        return {"mean": m, "sd": sd, "values": values}

    arms: dict[str, dict[int, Mapping[str, Any]]] = {}
    for k, results in per_seed.items():
        for arm, r in results.items():
            arms.setdefault(arm, {})[k] = r
    out = {}
    for arm, by_seed in arms.items():
        rs = list(by_seed.values())
        classes = list(rs[0]["scores"]["per_class"])
        out[arm] = {
            "seeds": list(by_seed),
            "map50": stats([r["scores"]["map50"] for r in rs]),
            "map50_95": stats([r["scores"]["map50_95"] for r in rs]),
            "per_class": {c: stats([r["scores"]["per_class"][c]["ap50"] for r in rs
                                    if r["scores"]["per_class"].get(c, {}).get("ap50")
                                    is not None])
                          for c in classes if c not in rs[0]["scores"]["absent"]},
            "unlearned": {k: r.get("unlearned", []) for k, r in by_seed.items()
                          if r.get("unlearned")},
        }
    return out


def seeds_table(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]],
                markdown: bool = True) -> str:
    """One row per arm: mean +- sd over seeds of mAP@0.5, mAP@0.5:0.95 and AP@0.5 per class."""
    summary = seeds_summary(per_seed)
    if not summary:
        return "(no results)"

    def ms(s: Mapping[str, Any]) -> str:
        if not s["values"]:
            return "-"
        return f"{s['mean']:.3f}" + ("" if s["sd"] is None else f" +- {s['sd']:.3f}")

    classes = list(next(iter(summary.values()))["per_class"])
    head = ["arm", "seeds", "mAP@0.5", "mAP@.5:.95", *[f"AP50 {c}" for c in classes]]
    rows = [[arm, str(len(v["seeds"])), ms(v["map50"]), ms(v["map50_95"]),
             *[ms(v["per_class"][c]) if c in v["per_class"] else "-" for c in classes]]
            for arm, v in summary.items()]
    notes = [f"{arm}, seed {k}: {', '.join(cs)} not learned"
             for arm, v in summary.items() for k, cs in v["unlearned"].items()]
    return _render(head, rows, notes, markdown)


def write_seeds_report(out: str | Path, per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]
                       ) -> tuple[Path, Path]:
    """Write ``out/seeds.json`` (:func:`seeds_summary`) and ``out/seeds.md``; return them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / "seeds.json", out / "seeds.md"
    atomic_write_json(j, seeds_summary(per_seed))
    atomic_write_text(m, seeds_table(per_seed) + "\n")
    return j, m
