import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hemosynth.config import CountsConfig, Gaussian, GenerationConfig
from hemosynth.smear.counts import GROUPS, Census, allocate, area_factor, draw_count, draw_shares
from hemosynth.taxonomy import MAIN_TYPES


def test_clip_rule_gives_zeros_and_resample_does_not():
    rng = np.random.default_rng(0)
    g = Gaussian(4.3, 4.8)
    clip = [draw_count(rng, g, 1.0, CountsConfig()) for _ in range(4000)]
    res = [draw_count(rng, g, 1.0, CountsConfig(negative_rule="resample")) for _ in range(4000)]
    assert min(clip) == 0 and min(res) >= 0
    assert np.mean(np.array(clip) == 0) > 0.15  # P(N(4.3, 4.8) < 0.5) is about 0.21
    # a truncated Gaussian: fewer zeros, higher mean
    assert np.mean(np.array(res) == 0) < np.mean(np.array(clip) == 0)
    assert np.mean(res) > np.mean(clip) - 0.2


@given(st.integers(1, 17), st.floats(0, 0.2), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_shares_follow_the_paper_rule(m, min_share, seed):
    s = draw_shares(np.random.default_rng(seed), m, min_share)
    assert len(s) == m
    assert s.sum() == pytest.approx(1.0)
    assert (s >= -1e-12).all()
    # each share is at most what the earlier ones left (Max decreasing from 1)
    left = 1.0
    for v in s:
        assert v <= left + 1e-12
        left -= v


@given(st.integers(0, 500), st.lists(st.floats(0.001, 1), min_size=1, max_size=14))
def test_allocate_sums_to_n(n, w):
    shares = np.array(w) / sum(w)
    out = allocate(n, shares)
    assert out.sum() == n
    assert (np.abs(out - n * shares) < 1 + 1e-9).all()


def test_small_means_are_kept_by_stochastic_rounding():
    rng = np.random.default_rng(3)
    cfg = CountsConfig()
    draws = [draw_count(rng, Gaussian(4.3, 0.0), 0.032, cfg) for _ in range(20000)]
    assert np.mean(draws) == pytest.approx(4.3 * 0.032, rel=0.1)
    assert set(draws) == {0, 1}


def test_counts_scale_with_field_area():
    ref = GenerationConfig()
    assert area_factor(ref) == pytest.approx(1.0)
    half = ref.replace(**{"canvas.width": 1296})
    assert area_factor(half) == pytest.approx(0.5)
    # a finer scale shows a smaller area of the slide
    fine = ref.replace(**{"canvas.um_per_px": ref.canvas.um_per_px / 2})
    assert area_factor(fine) == pytest.approx(0.25)
    c_ref = Census(ref)
    c_half = Census(half)
    rbc_ref = np.mean([c_ref.counts(i).per_class.get("RBC", 0) for i in range(300)])
    rbc_half = np.mean([c_half.counts(i).per_class.get("RBC", 0) for i in range(300)])
    assert rbc_ref == pytest.approx(669, rel=0.05)
    assert rbc_half == pytest.approx(669 / 2, rel=0.05)


def test_nucleated_rbc_draws_from_the_wbc_count():
    cfg = GenerationConfig(count=1).replace(**{"counts.wbc.mean": 30.0, "counts.wbc.sd": 0.0,
                                               "counts.platelet.mean": 0.0,
                                               "counts.platelet.sd": 0.0})
    census = Census(cfg)
    for i in range(50):
        per = census.counts(i).per_class
        nucleated = sum(per.get(c, 0) for c in GROUPS["nucleated"])
        assert nucleated == 30
        assert sum(per.get(c, 0) for c in MAIN_TYPES["Platelet"]) == 0
    assert any(census.counts(i).per_class.get("Nucleated RBC", 0) for i in range(50))


def _totals(cfg, n):
    census = Census(cfg)
    tot = {}
    for i in range(n):
        for c, v in census.counts(i).per_class.items():
            tot[c] = tot.get(c, 0) + v
    return tot


def _balance(tot, classes):
    v = [tot.get(c, 0) for c in classes]
    return max(v) / max(1, min(v))


def test_balanced_mode_evens_out_subtypes():
    cfg = GenerationConfig(count=1)
    bal = _totals(cfg, 600)
    paper = _totals(cfg.replace(**{"subtypes.mode": "paper"}), 600)
    for group in GROUPS.values():
        assert _balance(bal, group) < 1.05  # bounded by one smear's largest allocation
    # the unsteered paper mode is far less even over the same smears
    assert _balance(paper, GROUPS["nucleated"]) > _balance(bal, GROUPS["nucleated"]) + 0.05
    # both modes share the per-smear totals
    assert sum(bal.get(c, 0) for c in GROUPS["nucleated"]) == sum(
        paper.get(c, 0) for c in GROUPS["nucleated"]
    )


def test_census_does_not_depend_on_query_order():
    cfg = GenerationConfig(count=1)
    a = Census(cfg)
    b = Census(cfg)
    late = b.counts(40)
    assert [a.counts(i) for i in range(41)][40] == late
    assert a.counts(3) == b.counts(3)


def test_weights_mode_and_exclusions():
    cfg = GenerationConfig(count=1).replace(
        **{"subtypes.mode": "weights", "subtypes.weights": {"Lymphocyte": 1, "Monocyte": 1,
                                                            "Platelet": 1}}
    )
    tot = _totals(cfg, 100)
    assert set(tot) <= {"RBC", "Lymphocyte", "Monocyte", "Platelet"}
    cfg = GenerationConfig(count=1).replace(**{"subtypes.exclude": ["Basophil", "Band cell"]})
    tot = _totals(cfg, 100)
    assert "Basophil" not in tot and "Band cell" not in tot


def test_max_types_bounds_subtypes_per_smear():
    cfg = GenerationConfig(count=1).replace(**{"subtypes.max_types": 2})
    census = Census(cfg)
    for i in range(100):
        per = census.counts(i).per_class
        assert sum(1 for c in MAIN_TYPES["WBC"] + ("Nucleated RBC",) if per.get(c)) <= 2
