"""Count figures: label-set instances, balance, configured count distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hemosynth.stats.counts import (
    balance,
    configured_pmf,
    count_histogram,
    discrete_ks,
    label_set_instances,
)
from hemosynth.taxonomy import MAIN_TYPES, POOL_CLASSES, SUBTYPES


def test_label_set_instances_add_up():
    c = np.arange(1, len(POOL_CLASSES) + 1)
    inst = label_set_instances(c)
    assert list(inst["sub"]) == list(SUBTYPES)
    assert sum(inst["sub"].values()) == c[1:].sum()
    assert sum(inst["main"].values()) == c[1:].sum()
    assert inst["main+rbc"]["RBC"] == 1
    assert inst["main"]["WBC"] == sum(c[POOL_CLASSES.index(s)] for s in MAIN_TYPES["WBC"])


def test_balance():
    sub = dict.fromkeys(SUBTYPES, 10)
    sub["Band cell"] = 20
    assert balance(sub) == {"WBC": 2.0, "Platelet": 1.0}
    sub["Giant platelet"] = 0
    assert balance(sub)["Platelet"] is None


@pytest.mark.parametrize("rule", ["clip", "resample"])
def test_configured_pmf_is_a_distribution(rule):
    p = configured_pmf(3.0, 4.0, 40, rule)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert (p >= 0).all()
    if rule == "clip":  # P(X = 0) = P(N <= 0.5)
        assert p[0] == pytest.approx(0.5 * (1 + math.erf((0.5 - 3) / 4 / math.sqrt(2))))


def test_sampled_counts_fit_their_pmf():
    rng = np.random.default_rng(5)
    x = np.clip(np.round(rng.normal(6.0, 3.0, 4000)), 0, None).astype(int)
    p = configured_pmf(6.0, 3.0, 30, "clip")
    assert discrete_ks(x, p) < 0.03
    assert discrete_ks(x + 3, p) > 0.3
    assert count_histogram([0, 2, 2], kmax=4) == [1, 0, 2, 0, 0]
