"""Compiled kernels of the ``grid`` placement strategy (:class:`~.placement.GridPlacer`).

The grid is a table of shape ``(rows, cols, cap)`` of box ids (``-1`` = empty) with a fill
count per cell; box ``i`` is ``arr[i]`` (xyxy) with cover limit ``cov[i]``. The kernels make
exactly the float64 operations of the array version they replace, so every decision, and the
``attempts`` and ``checks`` counters, are bit-identical to it. Random draws stay in Python.

``mark`` (one int64 per box slot) and ``stamp`` (shape (1,)) deduplicate a proposal's
candidates: a box found in several of its cells is checked and counted once.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def span(x0, y0, x1, y1, cell, pad, rows, cols):
    """Grid index ranges (inclusive) covered by a box's interior, clipped to the table.

    Returns
    -------
    (c0, r0, c1, r1) : tuple of int
        Empty (``c0 > c1`` or ``r0 > r1``) when the box lies off the table.
    """
    c0 = max(int(np.floor(x0 / cell)) + pad, 0)
    r0 = max(int(np.floor(y0 / cell)) + pad, 0)
    c1 = min(int(np.ceil(x1 / cell)) - 1 + pad, cols - 1)
    r1 = min(int(np.ceil(y1 / cell)) - 1 + pad, rows - 1)
    return c0, r0, c1, r1


@numba.njit(cache=True, error_model="numpy")
def first_fit(cands, table, fill, arr, cov, mark, stamp, cell, pad, threshold, cover):
    """The first proposal that fits, checked against the boxes in the cells it covers.

    Parameters
    ----------
    cands : ndarray of shape (k, 4)
        Proposals (xyxy, float64), in order.
    table, fill, arr, cov, mark, stamp
        The grid state (see the module docstring).
    cell, pad : int
        Grid cell side in pixels; cells of margin on each side of the field.
    threshold : float
        A pair breaks the bound when its IoU exceeds it.
    cover : float
        The proposals' cover limit.

    Returns
    -------
    (j, used, checks) : tuple of int
        The index of the first fitting proposal (-1 if none), the proposals examined
        (``j + 1``, or ``k``) and the distinct candidates of those proposals.
    """
    rows, cols = fill.shape
    k = cands.shape[0]
    checks = 0
    for p in range(k):
        x0, y0, x1, y1 = cands[p, 0], cands[p, 1], cands[p, 2], cands[p, 3]
        c0, r0, c1, r1 = span(x0, y0, x1, y1, cell, pad, rows, cols)
        area_c = (x1 - x0) * (y1 - y0)
        stamp[0] += 1
        s = stamp[0]
        ok = True
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                for e in range(fill[r, c]):
                    i = table[r, c, e]
                    if mark[i] == s:
                        continue
                    mark[i] = s
                    checks += 1
                    if not ok:
                        continue  # failed already: only the count still matters
                    iw = min(x1, arr[i, 2]) - max(x0, arr[i, 0])
                    ih = min(y1, arr[i, 3]) - max(y0, arr[i, 1])
                    inter = max(iw, 0.0) * max(ih, 0.0)
                    area_o = (arr[i, 2] - arr[i, 0]) * (arr[i, 3] - arr[i, 1])
                    ratio = inter / (area_c + area_o - inter) if inter > 0 else 0.0
                    # a limit of 1 (or more) never binds: inter <= either area in float64 too
                    if (ratio > threshold or inter > cover * area_c
                            or inter > cov[i] * area_o):
                        ok = False
        if ok:
            return p, p + 1, checks
    return -1, k, checks


@numba.njit(cache=True)
def register(i, x0, y0, x1, y1, table, fill, cell, pad):
    """Put box ``i`` in every grid cell its interior covers.

    Returns
    -------
    bool
        False, with nothing changed, when one of those cells is full (grow ``table`` and call
        again).
    """
    rows, cols, cap = table.shape
    c0, r0, c1, r1 = span(x0, y0, x1, y1, cell, pad, rows, cols)
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            if fill[r, c] >= cap:
                return False
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            table[r, c, fill[r, c]] = i
            fill[r, c] += 1
    return True


@numba.njit(cache=True, error_model="numpy")
def place_batch(centres, w, h, inside, width, height, n, table, fill, arr, cov, mark, stamp,
                cell, pad, threshold, cover):
    """Round a batch of proposed centres to corners, find the first fit and register it.

    Parameters
    ----------
    centres : ndarray of shape (k, 2)
        Proposed box centres, as drawn.
    w, h, width, height : float
        Box and field sizes in pixels.
    inside : bool
        Clamp the boxes into the field.
    n : int
        The id the accepted box gets (``arr``, ``cov`` and ``mark`` must have room for it).

    Returns
    -------
    (j, used, checks, x0, y0, registered) : tuple
        As :func:`first_fit`, plus the accepted corner and whether it went into the grid
        (False: a cell was full; ``arr[n]`` and ``cov[n]`` are set, grow and
        :func:`register`).
    """
    k = centres.shape[0]
    cands = np.empty((k, 4))
    for p in range(k):
        x0 = np.floor(centres[p, 0] - w / 2 + 0.5)
        y0 = np.floor(centres[p, 1] - h / 2 + 0.5)
        if inside:
            x0 = min(max(x0, 0.0), width - w)
            y0 = min(max(y0, 0.0), height - h)
        cands[p, 0] = x0
        cands[p, 1] = y0
        cands[p, 2] = x0 + w
        cands[p, 3] = y0 + h
    j, used, checks = first_fit(cands, table, fill, arr, cov, mark, stamp, cell, pad,
                                threshold, cover)
    if j < 0:
        return j, used, checks, 0.0, 0.0, False
    for q in range(4):
        arr[n, q] = cands[j, q]
    cov[n] = cover
    done = register(n, cands[j, 0], cands[j, 1], cands[j, 2], cands[j, 3], table, fill, cell,
                    pad)
    return j, used, checks, cands[j, 0], cands[j, 1], done


def warm_up() -> None:
    """Compile (or load from the cache) the kernels with the argument types used in placing."""
    table = np.full((3, 3, 2), -1, np.int32)
    fill = np.zeros((3, 3), np.int32)
    arr = np.zeros((4, 4))
    cov = np.ones(4)
    mark = np.zeros(4, np.int64)
    stamp = np.zeros(1, np.int64)
    centres = np.array([[5.0, 5.0], [20.0, 20.0]])
    place_batch(centres, 4.0, 4.0, False, 30.0, 30.0, 0, table, fill, arr, cov, mark, stamp,
                10, 1, 0.1, 1.0)
    first_fit(np.array([[3.0, 3.0, 7.0, 7.0]]), table, fill, arr, cov, mark, stamp, 10, 1,
              0.1, 1.0)
    register(1, 20.0, 20.0, 24.0, 24.0, table, fill, 10, 1)
