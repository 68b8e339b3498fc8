"""The compiled ``grid`` placer against the array version it replaced: same draws, same
decisions, same counters."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hemosynth.config import PlacementConfig
from hemosynth.smear import gridjit
from hemosynth.smear.placement import GridPlacer, Placer, audit


class ReferenceGridPlacer(Placer):
    """The array (numpy) ``GridPlacer``, as it was before the compiled kernels; it uses the
    base class's placement loop."""

    def __init__(self, width, height, threshold, cfg, rng, cell=None):
        super().__init__(width, height, threshold, cfg, rng)
        self.cell = int(cell) if cell else 64
        self.pad = 4
        self.cols = int(np.ceil(width / self.cell)) + 2 * self.pad
        self.rows = int(np.ceil(height / self.cell)) + 2 * self.pad
        self.cap = 8
        self.table = np.full((self.rows, self.cols, self.cap), -1, np.int32)
        self.fill = np.zeros((self.rows, self.cols), np.int32)
        self.arr = np.zeros((64, 4))
        self.cov = np.ones(64)

    def _span(self, x0, y0, x1, y1):
        g = self.cell
        c0 = np.floor(np.asarray(x0) / g).astype(np.int64) + self.pad
        r0 = np.floor(np.asarray(y0) / g).astype(np.int64) + self.pad
        c1 = np.ceil(np.asarray(x1) / g).astype(np.int64) - 1 + self.pad
        r1 = np.ceil(np.asarray(y1) / g).astype(np.int64) - 1 + self.pad
        return c0, r0, c1, r1

    def _grow(self):
        bigger = np.full((self.rows, self.cols, self.cap * 2), -1, np.int32)
        bigger[:, :, : self.cap] = self.table
        self.table, self.cap = bigger, self.cap * 2

    def neighbours(self, box):
        c0, r0, c1, r1 = (int(v) for v in self._span(*box))
        c0, r0 = max(c0, 0), max(r0, 0)
        ids = self.table[r0 : r1 + 1, c0 : c1 + 1].ravel()
        return sorted(set(ids[ids >= 0].tolist()))

    def register(self, i, box):
        if i >= len(self.arr):
            self.arr = np.concatenate([self.arr, np.zeros_like(self.arr)])
            self.cov = np.concatenate([self.cov, np.ones_like(self.cov)])
        self.arr[i] = box
        self.cov[i] = self.covers[i]
        c0, r0, c1, r1 = (int(v) for v in self._span(*box))
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, self.cols - 1), min(r1, self.rows - 1)
        while self.fill[r0 : r1 + 1, c0 : c1 + 1].max() >= self.cap:
            self._grow()
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                self.table[r, c, self.fill[r, c]] = i
                self.fill[r, c] += 1

    def first_fit(self, cands):
        k = len(cands)
        c0, r0, c1, r1 = self._span(cands[:, 0], cands[:, 1], cands[:, 2], cands[:, 3])
        c0, r0 = np.maximum(c0, 0), np.maximum(r0, 0)
        c1, r1 = np.minimum(c1, self.cols - 1), np.minimum(r1, self.rows - 1)
        span_c = int((c1 - c0).max()) + 1
        span_r = int((r1 - r0).max()) + 1
        dc = np.arange(span_c)
        dr = np.arange(span_r)
        cc = c0[:, None, None] + dc[None, None, :]
        rr = r0[:, None, None] + dr[None, :, None]
        valid = (cc <= c1[:, None, None]) & (rr <= r1[:, None, None])
        cc = np.minimum(cc, self.cols - 1)
        rr = np.minimum(rr, self.rows - 1)
        ids = self.table[rr, cc]
        ids = np.where(valid[..., None], ids, -1).reshape(k, -1)
        ids = np.sort(ids, axis=1)
        dup = np.zeros_like(ids, bool)
        dup[:, 1:] = ids[:, 1:] == ids[:, :-1]
        ids = np.where(dup, -1, ids)
        present = ids >= 0
        n_checks = present.sum(axis=1)
        other = self.arr[np.maximum(ids, 0)]
        iw = np.minimum(cands[:, None, 2], other[..., 2]) - np.maximum(cands[:, None, 0],
                                                                         other[..., 0])
        ih = np.minimum(cands[:, None, 3], other[..., 3]) - np.maximum(cands[:, None, 1],
                                                                         other[..., 1])
        inter = np.maximum(iw, 0) * np.maximum(ih, 0)
        area_c = ((cands[:, 2] - cands[:, 0]) * (cands[:, 3] - cands[:, 1]))[:, None]
        area_o = (other[..., 2] - other[..., 0]) * (other[..., 3] - other[..., 1])
        union = area_c + area_o - inter
        ratio = np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)
        over = present & (ratio > self.threshold)
        lims = self.cov[np.maximum(ids, 0)]
        if self.cover < 1.0 or (present & (lims < 1.0)).any():
            over |= present & ((inter > self.cover * area_c) | (inter > lims * area_o))
        ok = ~over.any(axis=1)
        hit = np.flatnonzero(ok)
        used = int(hit[0]) + 1 if hit.size else k
        self.stats.attempts += used
        self.stats.checks += int(n_checks[:used].sum())
        return int(hit[0]) if hit.size else -1


def _both(cells, width, height, threshold, cell, seed, attempts, many=False):
    """The reference and the compiled placer on the same cells and seed; ``many``: the
    compiled one places them all in one :meth:`GridPlacer.place_many` call."""
    pc = PlacementConfig(strategy="grid", max_attempts=attempts)
    out = []
    for cls in (ReferenceGridPlacer, GridPlacer):
        placer = cls(width, height, threshold, pc, np.random.default_rng(seed), cell=cell)
        if many and cls is GridPlacer:
            placed = placer.place_many(np.array([c[:2] for c in cells], float).reshape(-1, 2),
                                       np.array([c[2] for c in cells], bool),
                                       np.array([c[3] for c in cells], float))
        else:
            placed = [placer.place(*c) for c in cells]
        out.append((placer, placed))
    return out


#: a box side: often tiny, so that many boxes share a grid cell and its capacity grows
sides = st.one_of(st.integers(1, 10), st.integers(1, 90))
#: (w, h, inside, cover): tiny to field-sized boxes, some with cover limits
cell_lists = st.lists(
    st.tuples(sides, sides, st.booleans(), st.sampled_from([1.0, 1.0, 1.0, 0.5, 0.2])),
    min_size=10, max_size=200,
)

#: grid cell sides: many cells per box, or many boxes per cell
grid_cells = st.one_of(st.integers(4, 30), st.integers(60, 200))


@given(cell_lists, st.integers(30, 400), st.integers(30, 300), st.floats(0.0, 0.5),
       grid_cells, st.integers(0, 2**32 - 1), st.integers(1, 40), st.booleans())
@settings(max_examples=80, deadline=None)
def test_compiled_grid_matches_the_array_version(cells, width, height, threshold, cell, seed,
                                                 attempts, many):
    (ref, rp), (new, np_) = _both(cells, width, height, threshold, cell, seed, attempts, many)
    assert np_ == rp  # same paste points, same dropped cells
    assert new.boxes == ref.boxes and new.covers == ref.covers
    assert new.stats.attempts == ref.stats.attempts
    assert new.stats.checks == ref.stats.checks
    assert new.rng.bit_generator.state == ref.rng.bit_generator.state  # same draws
    assert new.cap == ref.cap
    np.testing.assert_array_equal(new.table, ref.table)
    np.testing.assert_array_equal(new.fill, ref.fill)
    for box in ref.boxes[:20]:
        assert new.neighbours(box) == ref.neighbours(box)


def test_crowded_small_cells_grow_and_match():
    """Many tiny boxes per grid cell: capacity grows, boxes hang over the border, cells are
    dropped; still identical."""
    rng = np.random.default_rng(5)
    cells = [(int(rng.integers(2, 12)), int(rng.integers(2, 12)), bool(rng.random() < 0.3),
              float(rng.choice([1.0, 0.5]))) for _ in range(600)]
    cells += [(40, 40, False, 1.0)] * 100
    for many in (False, True):
        (ref, rp), (new, np_) = _both(cells, 160, 120, 0.3, 40, 9, 20, many)
        assert ref.cap > 8 and None in rp
        assert any(p and (p[0] < 0 or p[1] < 0) for p in rp)
        assert np_ == rp
        assert (new.stats.attempts, new.stats.checks) == (ref.stats.attempts, ref.stats.checks)
        np.testing.assert_array_equal(new.table, ref.table)


def test_direct_first_fit_and_register_match():
    pc = PlacementConfig(strategy="grid")
    ref = ReferenceGridPlacer(300, 200, 0.1, pc, np.random.default_rng(0), cell=20)
    new = GridPlacer(300, 200, 0.1, pc, np.random.default_rng(0), cell=20)
    rng = np.random.default_rng(1)
    for i in range(200):
        cands = np.floor(rng.uniform(-30, (290, 190), (6, 2)))  # some hang over the border
        size = rng.integers(3, 50, (6, 2))
        cands = np.concatenate([cands, cands + size], axis=1)
        for p in (ref, new):
            p.cover = 0.5 if i % 3 == 0 else 1.0
        j = ref.first_fit(cands)
        assert new.first_fit(cands) == j
        if j >= 0:
            box = tuple(float(v) for v in cands[j])
            for p in (ref, new):
                p.boxes.append(box)
                p.covers.append(p.cover)
                p.register(len(p.boxes) - 1, box)
    assert (new.stats.attempts, new.stats.checks) == (ref.stats.attempts, ref.stats.checks)
    np.testing.assert_array_equal(new.table, ref.table)


def test_audit_finds_nothing_on_a_crowded_field():
    pc = PlacementConfig(strategy="grid", max_attempts=50)
    placer = GridPlacer(800, 600, 0.2, pc, np.random.default_rng(3), cell=82)
    rng = np.random.default_rng(4)
    for _ in range(400):
        if rng.random() < 0.05:
            placer.place(20, 20, False, cover=0.5)
        else:
            placer.place(int(rng.integers(60, 91)), int(rng.integers(60, 91)),
                         bool(rng.random() < 0.1))
    boxes = np.array(placer.boxes)
    assert len(boxes) > 100
    assert audit(boxes, 0.2, np.array(placer.covers)) == 0


def test_warm_up_runs():
    gridjit.warm_up()
