"""The check schedule and the tail estimate of the iterative solvers."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvnumba.solvers import _stopping as S


def _tail(excess, p_star, its):
    """Running minima ``P* + excess(k)`` at the iterations ``its``."""
    return {k: p_star + excess(k) for k in its}


@settings(max_examples=60, deadline=None)
@given(a=st.floats(1.0, 4.0), c=st.floats(1e-3, 10.0), every=st.sampled_from([1, 5, 50]),
       k=st.integers(10, 5000))
def test_tail_estimate_bounds_a_power_law_tail(a, c, every, k):
    # P_k − P* = C k^(−a), a ≥ 1: the estimate is at least the relative error
    p_star = 1.0
    its = sorted(set(range(every, k + 1, every)) | {k})
    best = _tail(lambda i: c * i ** (-a), p_star, its)
    est = S.tail_estimate(best, k, best[k])
    true = c * k ** (-a) / (p_star + c * k ** (-a))
    assert est >= true * (1 - 1e-9)


@pytest.mark.parametrize("k", [40, 400, 4000])
def test_tail_estimate_is_exact_on_a_linear_tail(k):
    c, p_star = 2.0, 3.0
    best = _tail(lambda i: c / i, p_star, range(1, k + 1))
    low = p_star + c / k
    assert S.tail_estimate(best, k, low) == pytest.approx((c / k) / low, rel=1e-9)


def test_tail_estimate_on_a_geometric_tail_stops_before_the_half_run_decrease():
    r, c, p_star, eps = 0.97, 1.0, 1.0, 1e-3
    best = _tail(lambda i: c * r ** i, p_star, range(1, 2000))
    need = next(k for k in range(1, 2000) if c * r ** k / (p_star + c * r ** k) <= eps)
    stop = next(k for k in range(S.MIN_ITER, 2000) if S.tail_estimate(best, k, best[k]) <= eps)
    half = next(k for k in range(S.MIN_ITER, 2000)
                if (best[k // 2] - best[k]) / best[k] <= eps)
    assert need <= stop < half
    assert stop <= 1.6 * need  # the half-run decrease: twice


def test_tail_estimate_waits_for_enough_iterations_and_a_check_behind():
    assert S.tail_estimate({5: 2.0, 9: 1.0}, 9, 1.0) == math.inf  # before MIN_ITER
    assert S.tail_estimate({12: 1.0}, 12, 1.0) == math.inf  # no earlier check
    assert S.tail_estimate({5: 1.0, 12: 1.0}, 12, 1.0) == 0.0  # flat
    assert S.tail_estimate({5: 0.0, 12: 0.0}, 12, 0.0) == 0.0  # a zero optimum


def test_tail_estimate_does_not_stop_on_a_rise():
    # the running minimum stands still while the objective is above it
    best = {5: 90.0, 10: 22.0, 15: 22.0}
    assert S.tail_estimate(best, 15, 31.0) == pytest.approx(9.0 / 22.0)
    assert S.tail_estimate(best, 15, 22.0) == 0.0


@settings(max_examples=80, deadline=None)
@given(gaps=st.lists(st.floats(1e-6, 1e3), min_size=1, max_size=8),
       every=st.sampled_from([1, 5, 50]), eps=st.sampled_from([1e-4, 1e-3, 1e-2]))
def test_predicted_check_is_between_the_spaced_check_and_half_the_run_ahead(gaps, every, eps):
    it, checks = 0, []
    for g in gaps:
        it = it + every if not checks else S.predicted_check(checks, every, eps)
        checks.append((it, g))
        nxt = S.predicted_check(checks, every, eps)
        assert S.spaced_check(it, every) <= nxt <= max(S.spaced_check(it, every), it + it // 2)


def test_predicted_check_lands_short_of_a_power_law_trend_meeting_eps():
    # gap = 100 k^(-2): meets eps = 1e-3 at k ≈ 316; the prediction stays before it
    eps = 1e-3
    trend = lambda k: 100.0 * k ** -2.0  # noqa: E731
    checks = [(k, trend(k)) for k in (20, 30, 45)]
    nxt = S.predicted_check(checks, 5, eps)
    meet = math.sqrt(100.0 / eps)
    assert S.spaced_check(45, 5) < nxt < meet
    assert nxt - 45 == pytest.approx(min(S.PREDICT_SHARE * (meet - 45), 45 // 2), abs=1)


def test_predicted_check_falls_back_where_the_gap_is_not_falling():
    for checks in ([(5, 1.0), (10, 2.0), (15, 3.0)],  # rising
                   [(5, np.inf), (10, np.inf), (15, 1.0)],  # no dual point yet
                   [(5, 1.0), (10, 0.5), (15, 1e-4)]):  # already within eps
        assert S.predicted_check(checks, 5, 1e-3) == S.spaced_check(15, 5)
