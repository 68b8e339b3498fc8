"""Dataset statistics: counts, overlap, spacing and sizes, against a real annotated set.

Statistics read the records and manifest of a generated dataset (never its images) and the
label files of a real set. Entry point: :func:`dataset_stats` (``hemosynth stats``).
"""

from .compare import curve_distance, ks_statistic, wasserstein
from .layout import GROUPS, ClassMap, Layout, make_layout
from .loaders import SetMeasures, load_generated, load_real, measure_layouts, real_layouts
from .report import dataset_stats, summarize, write_report
from .spatial import (
    box_coverage,
    l_function,
    max_iou,
    measure_layout,
    nearest_neighbour,
    ripley_k,
    ripley_sums,
)

__all__ = [
    "GROUPS",
    "ClassMap",
    "Layout",
    "SetMeasures",
    "box_coverage",
    "curve_distance",
    "dataset_stats",
    "ks_statistic",
    "l_function",
    "load_generated",
    "load_real",
    "make_layout",
    "max_iou",
    "measure_layout",
    "measure_layouts",
    "nearest_neighbour",
    "real_layouts",
    "ripley_k",
    "ripley_sums",
    "summarize",
    "wasserstein",
    "write_report",
]
