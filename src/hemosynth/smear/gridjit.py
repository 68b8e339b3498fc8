"""Compiled kernels of the ``grid`` placement strategy (:class:`~.placement.GridPlacer`).

The grid is a table of shape ``(rows, cols, cap)`` of box ids (``-1`` = empty) with a fill
count per cell; box ``i`` is ``arr[i]`` (xyxy) with cover limit ``cov[i]``. The kernels make
exactly the float64 operations of the array version they replace, so every decision, and the
``attempts`` and ``checks`` counters, are bit-identical to it. Random draws stay in Python:
:func:`place_cells` receives every cell's proposals drawn in advance.

``mark`` (one int64 per box slot) and ``stamp`` (shape (1,)) deduplicate a proposal's
candidates: a box found in several of its cells is checked and counted once.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel


@kernel(cache=True)
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


@kernel(cache=True, error_model="numpy")
def check(x0, y0, x1, y1, table, fill, arr, cov, mark, stamp, cell, pad, threshold, cover):
    """Whether one proposal fits, and how many distinct candidates it was checked against.

    Parameters are as for :func:`first_fit`, for the proposal ``(x0, y0, x1, y1)``.

    Returns
    -------
    (ok, checks) : tuple of (bool, int)
    """
    rows, cols = fill.shape
    c0, r0, c1, r1 = span(x0, y0, x1, y1, cell, pad, rows, cols)
    area_c = (x1 - x0) * (y1 - y0)
    stamp[0] += 1
    s = stamp[0]
    ok = True
    checks = 0
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
                if ratio > threshold or inter > cover * area_c or inter > cov[i] * area_o:
                    ok = False
    return ok, checks


@kernel(cache=True, error_model="numpy")
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
    k = cands.shape[0]
    checks = 0
    for p in range(k):
        ok, n = check(cands[p, 0], cands[p, 1], cands[p, 2], cands[p, 3], table, fill, arr,
                      cov, mark, stamp, cell, pad, threshold, cover)
        checks += n
        if ok:
            return p, p + 1, checks
    return -1, k, checks


@kernel(cache=True)
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


@kernel(cache=True, error_model="numpy")
def place_cells(u, urow, lo, extent, sizes, inside, covers, first, n, width, height, table,
                fill, arr, cov, mark, stamp, cell, pad, threshold, out, placed, counts):
    """Place cells ``first, first + 1, ...`` in order, each at its first fitting proposal.

    Parameters
    ----------
    u : ndarray of shape (v, A, 2)
        Uniform draws: ``A`` proposals for each cell that has room (row ``urow[i]``).
    urow : ndarray of shape (m,), int64
        Row of ``u`` of cell ``i``; -1 for a cell that must stay inside but is larger than the
        field (dropped, no draws).
    lo, extent : ndarray of shape (m, 2)
        The range of each cell's box centre: a proposal is ``u * extent + lo``.
    sizes : ndarray of shape (m, 2)
        Box width and height (float64).
    inside : ndarray of shape (m,), bool
        Clamp the box into the field.
    covers : ndarray of shape (m,)
        Each cell's cover limit.
    first, n : int
        The cell to start with, and the id its box gets if placed (``arr``, ``cov``, ``mark``
        must have room for every cell).
    out : ndarray of shape (m, 2), float64
        Receives each placed cell's top-left corner.
    placed : ndarray of shape (m,), bool
        Receives whether each cell was placed.
    counts : ndarray of shape (2,), int64
        ``attempts`` and ``checks`` are added to it.

    Returns
    -------
    (next, n, full) : tuple
        The cell to continue with, the next box id, and whether the run stopped because box
        ``n - 1`` (cell ``next - 1``) found a grid cell full: it is in ``arr`` but not in the
        grid (grow the table, :func:`register` it, and call again from ``next``).
    """
    m = sizes.shape[0]
    for i in range(first, m):
        r = urow[i]
        placed[i] = False
        if r < 0:
            continue
        w, h = sizes[i, 0], sizes[i, 1]
        for p in range(u.shape[1]):
            # the same operations, in the same order, as the Python loop of Placer._place
            cx = u[r, p, 0] * extent[i, 0] + lo[i, 0]
            cy = u[r, p, 1] * extent[i, 1] + lo[i, 1]
            x0 = np.floor(cx - w / 2 + 0.5)
            y0 = np.floor(cy - h / 2 + 0.5)
            if inside[i]:
                x0 = min(max(x0, 0.0), width - w)
                y0 = min(max(y0, 0.0), height - h)
            ok, checks = check(x0, y0, x0 + w, y0 + h, table, fill, arr, cov, mark, stamp,
                               cell, pad, threshold, covers[i])
            counts[0] += 1
            counts[1] += checks
            if ok:
                arr[n, 0], arr[n, 1], arr[n, 2], arr[n, 3] = x0, y0, x0 + w, y0 + h
                cov[n] = covers[i]
                out[i, 0], out[i, 1] = x0, y0
                placed[i] = True
                n += 1
                if not register(n - 1, x0, y0, x0 + w, y0 + h, table, fill, cell, pad):
                    return i + 1, n, True
                break
    return m, n, False


def warm_up() -> None:
    """Compile (or load from the cache) the kernels with the argument types used in placing."""
    table = np.full((3, 3, 2), -1, np.int32)
    fill = np.zeros((3, 3), np.int32)
    arr = np.zeros((4, 4))
    cov = np.ones(4)
    mark = np.zeros(4, np.int64)
    stamp = np.zeros(1, np.int64)
    place_cells(np.full((1, 2, 2), 0.5), np.array([0, -1]), np.zeros((2, 2)),
                np.full((2, 2), 30.0), np.full((2, 2), 4.0), np.array([False, True]),
                np.ones(2), 0, 0, 30.0, 30.0, table, fill, arr, cov, mark, stamp, 10, 1, 0.1,
                np.zeros((2, 2)), np.zeros(2, np.bool_), np.zeros(2, np.int64))
    first_fit(np.array([[3.0, 3.0, 7.0, 7.0]]), table, fill, arr, cov, mark, stamp, 10, 1,
              0.1, 1.0)
    register(1, 20.0, 20.0, 24.0, 24.0, table, fill, 10, 1)
