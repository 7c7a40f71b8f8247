"""The book's one statistic and its verdicts (samlib.results), against hand-computed cases."""
import math
from itertools import product

import numpy as np
import pandas as pd
import pytest

from samlib import results
from samlib.results import PairedEffect, median_interval, paired_comparison, paired_effect_of, sign_test, verdict


def test_sign_test_by_hand():
    assert sign_test(10, 0) == pytest.approx(2 / 1024)  # 2 * P(X <= 0), X ~ Bin(10, 1/2)
    assert sign_test(5, 0) == pytest.approx(2 / 32) == 0.0625  # five of five cannot reach 0.05
    assert sign_test(6, 4) == pytest.approx(2 * (1 + 10 + 45 + 120 + 210) / 1024)  # 2 P(X <= 4) = 0.754
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024)
    assert sign_test(3, 3) == 1.0 and sign_test(0, 0) == 1.0


def test_sign_test_equals_brute_force_enumeration():
    """P(a split at least as uneven as the one seen), by counting all 2**n sign patterns."""
    for wins, losses in [(7, 1), (2, 6), (4, 4), (8, 0), (1, 0)]:
        n = wins + losses
        extreme = min(wins, losses)
        count = sum(1 for signs in product((0, 1), repeat=n) if min(sum(signs), n - sum(signs)) <= extreme)
        assert sign_test(wins, losses) == pytest.approx(min(1.0, count / 2 ** n))


def test_median_interval_by_hand():
    values = np.arange(1.0, 11.0)  # n = 10: k = 2 covers 1 - 2 * 11/1024 = 0.9785; k = 3 only 0.891
    low, high, coverage = median_interval(values[::-1])
    assert (low, high) == (2.0, 9.0) and coverage == pytest.approx(1 - 22 / 1024)
    assert median_interval(np.arange(6.0)) == (0.0, 5.0, pytest.approx(1 - 2 / 64))  # n = 6: the whole range
    assert all(math.isnan(v) for v in median_interval(np.arange(5.0)))  # n = 5: no 95% interval exists
    low, high, coverage = median_interval(np.arange(5.0), level=0.9)
    assert (low, high) == (0.0, 4.0) and coverage == pytest.approx(1 - 2 / 32)


def test_median_interval_covers_the_median_as_often_as_it_says():
    """Over many samples of a skewed distribution, the interval holds the true median at least 95% of the time."""
    rng = np.random.default_rng(0)
    samples = rng.exponential(size=(4000, 12))
    true_median = math.log(2)
    hits = sum(low <= true_median <= high for low, high, _ in map(median_interval, samples))
    assert hits / len(samples) >= 0.95 - 0.01


def _effect(differences, **options):
    differences = np.asarray(differences, dtype=float)
    return paired_effect_of(0.7 + differences, np.full(len(differences), 0.7), **options)


def test_ten_wins_of_ten_with_a_small_effect_is_small_but_consistent():
    effect = _effect([0.004, 0.006, 0.008, 0.009, 0.010, 0.011, 0.012, 0.014, 0.016, 0.020], room=0.17)
    assert (effect.wins, effect.losses, effect.ties, effect.n) == (10, 0, 0, 10)
    assert effect.p_value == pytest.approx(2 / 1024)
    assert effect.median == pytest.approx(0.0105) and (effect.low, effect.high) == pytest.approx((0.006, 0.016))
    assert effect.share == pytest.approx(0.0105 / 0.17)
    assert verdict(effect, meaningful=0.25 * 0.17) == "small but consistent"
    assert verdict(effect, meaningful=0.01) == "reproduced"


def test_an_interval_that_straddles_zero_is_not_detected_and_names_the_largest_effect_allowed():
    effect = _effect([-0.025, -0.012, -0.004, 0.001, 0.002, 0.004, 0.006, 0.011, 0.030, 0.054])
    assert (effect.wins, effect.losses) == (7, 3) and effect.p_value == pytest.approx(2 * 176 / 1024)
    assert effect.low < 0 < effect.high and effect.best_allowed == pytest.approx(0.030)
    assert verdict(effect, meaningful=0.04) == "not detected"


def test_five_seeds_are_too_few_whatever_they_show():
    effect = _effect([0.01, 0.02, 0.03, 0.04, 0.05])
    assert effect.too_few and effect.p_value == 0.0625
    assert verdict(effect, meaningful=0.001) == "too few seeds"
    eight = _effect(np.linspace(0.01, 0.05, 8))  # an interval exists but the held-out bar is ten seeds
    assert not eight.too_few and verdict(eight, meaningful=0.001) == "too few seeds"
    assert verdict(eight, meaningful=0.001, min_seeds=8) == "reproduced"


def test_an_effect_the_wrong_way_is_opposite():
    assert verdict(_effect(-np.linspace(0.01, 0.05, 10)), meaningful=0.01) == "opposite"


def test_a_lower_is_better_ratio_reads_the_other_way():
    """The toy's probe error: LSAM's over SGD's, per seed; a win is a ratio below 1."""
    sgd = np.full(12, 0.4)
    lsam = sgd * np.array([0.3, 0.35, 0.4, 0.45, 0.5, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.1])
    effect = paired_effect_of(lsam, sgd, scale="ratio", better="lower")
    assert (effect.wins, effect.losses) == (11, 1) and effect.null == 1.0
    assert effect.median == pytest.approx(0.525) and effect.high < 1
    assert effect.best_allowed == effect.low
    assert verdict(effect, meaningful=0.5) == "small but consistent"  # a median ratio of 0.525 does not halve
    assert verdict(effect, meaningful=0.6) == "reproduced"


def test_ties_count_as_neither_win_nor_loss():
    effect = _effect([0.0, 0.0, 0.01, -0.01, 0.02, 0.0, 0.03, 0.01, 0.0, 0.02])
    assert (effect.wins, effect.losses, effect.ties) == (5, 1, 4) and effect.p_value == pytest.approx(14 / 64)


def test_paired_comparison_pairs_by_seed_whatever_the_row_order():
    frame = pd.DataFrame({"optimizer": ["SGD"] * 3 + ["SAM"] * 3, "rho": [0.0] * 3 + [0.05] * 3,
                          "seed": [0, 1, 2, 2, 0, 1], "hard_probe": [0.60, 0.70, 0.80, 0.79, 0.62, 0.73]})
    effect = paired_comparison(frame, "SAM", 0.05, "hard_probe")
    assert (effect.wins, effect.losses) == (2, 1) and effect.median == pytest.approx(0.02)


@pytest.mark.parametrize("call, error, match", [
    (lambda: paired_effect_of([0.1, 0.2], [0.1]), ValueError, "same length"),
    (lambda: paired_effect_of([0.1], [-0.1], scale="ratio"), ValueError, "at least 0"),
    (lambda: paired_effect_of([0.1], [0.2], scale="log"), ValueError, "scale"),
    (lambda: paired_effect_of([0.1], [0.2], better="up"), ValueError, "better"),
    (lambda: paired_effect_of([0.1], [0.2], room=0), ValueError, "room"),
    (lambda: median_interval([1.0, float("nan")]), ValueError, "finite"),
    (lambda: median_interval([1.0, 2.0], level=1.0), ValueError, "level"),
    (lambda: sign_test(-1, 2), ValueError, "wins"),
    (lambda: verdict(_effect(np.ones(10) / 100), meaningful=float("nan")), ValueError, "meaningful"),
])
def test_bad_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_describe_says_everything_a_reader_needs_in_one_line():
    effect = _effect([0.004, 0.006, 0.008, 0.009, 0.010, 0.011, 0.012, 0.014, 0.016, 0.020], room=0.17)
    assert results.describe(effect, "SAM") == ("median +0.011 [+0.006, +0.016] (98% interval), SAM better than SGD "
                                               "on 10 of 10 seeds, sign test p = 0.002, 0.06 of the room")
    assert "no 95% interval" in results.describe(_effect([0.01, 0.02]))


def test_the_verdict_words_are_fixed():
    assert results.VERDICTS == ("reproduced", "small but consistent", "not detected", "opposite", "too few seeds")
    assert isinstance(_effect([0.1] * 10), PairedEffect) and results.MIN_SEEDS == 10
