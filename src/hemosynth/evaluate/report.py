"""One table and one JSON for a set of arms (each arm's predictions stay in its folder).

``OUT/report.json`` holds every arm's result; ``OUT/report.md`` the table; each arm's
predictions are ``OUT/<arm>/predictions.json`` (COCO results with the test set's ids, scorable
again with ``hemosynth score``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_json, atomic_write_text


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


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
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(head))]
        lines += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    return "\n".join(lines + notes)


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
