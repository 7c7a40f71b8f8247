"""samlib.results: mean ± sd tables and the toy's paired effects, checked on hand-made rows (the book's one statistic:
tests/test_statistic.py)."""
import numpy as np
import pandas as pd
import pytest

from samlib import results


def _rows():
    return pd.DataFrame({"optimizer": ["LSAM", "SGD", "SAM"] * 3, "rho": [0.5, 0.0, 0.05] * 3,
                         "seed": np.repeat([0, 1, 2], 3),
                         "label": ["LSAM ρ=0.5", "SGD", "SAM ρ=0.05"] * 3,
                         "acc": [0.78, 0.70, 0.71, 0.82, 0.72, 0.69, 0.86, 0.74, 0.73]})


def test_seed_table_by_hand():
    table = results.seed_table(_rows(), ["acc"])
    assert list(table.index) == ["SGD", "SAM ρ=0.05", "LSAM ρ=0.5"]
    assert table.loc["SGD", "acc"] == "0.720 ± 0.020" and table.loc["LSAM ρ=0.5", "acc"] == "0.820 ± 0.040"
    assert table.loc["SAM ρ=0.05", "acc"] == "0.710 ± 0.020" and (table.seeds == 3).all()
    with pytest.raises(KeyError, match="no column"):
        results.seed_table(_rows(), ["worst"])
    assert results.seed_table(_rows().query("seed == 1"), ["acc"]).loc["SGD", "acc"] == "0.720"  # one seed: no sd


def test_seed_table_across_a_column_is_keyed_by_optimizer_and_rho():
    rows = pd.DataFrame({"optimizer": ["SGD", "LSAM", "SAM"] * 4, "rho": [0.0, 1.0, 0.1] * 4,
                         "turns": np.repeat([0.5, 0.5, 1.0, 1.0], 3), "seed": np.repeat([0, 1, 0, 1], 3),
                         "hard_error": [0.2, 0.1, 0.3, 0.4, 0.1, 0.3, 0.3, 0.2, 0.1, 0.5, 0.2, 0.1]})
    table = results.seed_table(rows, "hard_error", across="turns")
    assert list(table.index) == [("SGD", 0.0), ("SAM", 0.1), ("LSAM", 1.0)]
    assert list(table.columns) == ["0.5 turns", "1 turns"]
    assert table.loc[("SGD", 0.0), "0.5 turns"] == "0.300 ± 0.141"
    assert table.loc[("LSAM", 1.0), "1 turns"] == "0.200 ± 0.000"
    with pytest.raises(ValueError, match="one metric"):
        results.seed_table(rows.assign(x=0), ["hard_error", "x"], across="turns")


def test_median_table_gives_the_median_and_quartiles_by_hand():
    rows = pd.DataFrame({"optimizer": ["SGD"] * 5 + ["LSAM"] * 5, "rho": [0.0] * 5 + [1.0] * 5, "turns": 0.5,
                         "seed": list(range(5)) * 2, "hard_error": [0.1, 0.4, 0.2, 0.3, 0.5, 0.0, 0.0, 0.1, 0.4, 0.2]})
    table = results.median_table(rows, "hard_error", across="turns")
    assert list(table.index) == [("SGD", 0.0), ("LSAM", 1.0)] and list(table.columns) == ["0.5 turns"]
    assert table.loc[("SGD", 0.0), "0.5 turns"] == "0.300 [0.200, 0.400]"  # linear quartiles of 0.1 ... 0.5
    assert table.loc[("LSAM", 1.0), "0.5 turns"] == "0.100 [0.000, 0.200]"
    with pytest.raises(KeyError, match="no column"):
        results.median_table(rows, "easy_error", across="turns")


def test_labels_are_added_when_missing():
    rows = pd.DataFrame({"optimizer": ["SGD", "LSAM"], "rho": [0.0, 0.5], "seed": [0, 0], "acc": [0.5, 0.6]})
    assert results.label_order(rows) == ["SGD", "LSAM ρ=0.5"]


# --- paired effects by group: the one statistic on the ratio scale --------------------------------------------


def _pairs(sgd, lsam, turns=0.5):
    return pd.DataFrame([{"optimizer": "SGD", "rho": 0.0, "turns": turns, "seed": s, "err": v} for s, v in
                         enumerate(sgd)] + [{"optimizer": "LSAM", "rho": 1.0, "turns": turns, "seed": s, "err": v}
                                            for s, v in enumerate(lsam)])


def test_paired_effect_matches_a_hand_count():
    paired_effect = results.paired_effect
    sgd, lsam = [0.4, 0.2, 0.3, 0.5, 0.1], [0.1, 0.2, 0.35, 0.05, 0.0]
    row = paired_effect(_pairs(sgd, lsam), "LSAM", 1.0, "err").loc[0.5]
    assert row["SGD median"] == 0.3 and row["LSAM median"] == 0.1
    assert row["median ratio"] == pytest.approx(0.25)  # the ratios 0.25, 1, 7/6, 0.1, 0: their median
    assert (row.wins, row.ties, row.pairs) == (3, 1, 5)  # 0.1<0.4, 0.05<0.5, 0<0.1; 0.2 ties; 0.35>0.3
    assert np.isnan(row["ratio low"]) and row.verdict == "too few seeds"  # five pairs: no 95% interval
    assert row.p == pytest.approx(2 * 5 / 16)  # 3 wins, 1 loss: 2 P(X <= 1 | n = 4)


def test_paired_effect_gives_the_verdict_against_the_meaningful_ratio():
    sgd = [0.4, 0.3, 0.5, 0.35, 0.45, 0.3, 0.4, 0.5, 0.6, 0.2]
    halved = [0.3 * v for v in sgd]                       # every pair at a ratio of 0.3
    row = results.paired_effect(_pairs(sgd, halved), "LSAM", 1.0, "err").loc[0.5]
    assert row["median ratio"] == pytest.approx(0.3) and row.wins == 10 and row.verdict == "reproduced"
    assert (row["ratio low"], row["ratio high"]) == pytest.approx((0.3, 0.3))
    row = results.paired_effect(_pairs(sgd, [0.9 * v for v in sgd]), "LSAM", 1.0, "err").loc[0.5]
    assert row.verdict == "small but consistent"           # 10 of 10 below, but by a tenth, not a half
    row = results.paired_effect(_pairs(sgd, [0.9 * v for v in sgd]), "LSAM", 1.0, "err", meaningful=0.95).loc[0.5]
    assert row.verdict == "reproduced"


def test_a_zero_baseline_gives_a_ratio_of_1_or_infinity():
    effect = results.paired_effect_of([0.0, 0.1, 0.1], [0.0, 0.0, 0.2], scale="ratio", better="lower")
    assert (effect.wins, effect.losses, effect.ties) == (1, 1, 1)  # 0/0 ties, 0.1/0 loses, 0.1/0.2 wins
    assert effect.median == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 0"):
        results.paired_effect_of([0.1], [-0.1], scale="ratio", better="lower")


def test_paired_effect_groups_by_complexity_and_refuses_unpaired_runs():
    paired_effect = results.paired_effect
    frame = pd.concat([_pairs([0.4, 0.2], [0.1, 0.3], 0.5), _pairs([0.3, 0.3], [0.3, 0.3], 1.0)])
    table = paired_effect(frame, "LSAM", 1.0, "err")
    assert list(table.index) == [0.5, 1.0] and table.loc[1.0, "ties"] == 2 and table.loc[1.0, "wins"] == 0
    with pytest.raises(ValueError, match="same seeds"):
        paired_effect(frame[~((frame.optimizer == "SGD") & (frame.seed == 1))], "LSAM", 1.0, "err")
    with pytest.raises(ValueError, match="needs SGD runs and SAM runs"):
        paired_effect(frame, "SAM", 0.1, "err")
    with pytest.raises(ValueError, match="meaningful"):
        paired_effect(frame, "LSAM", 1.0, "err", meaningful=-0.5)


def test_run_row_and_run_column_select_by_optimizer_and_radius():
    from samlib.results import run_column, run_row

    table = pd.DataFrame({"wins": [3, 5]}, index=["SGD", "SAM ρ=0.05"])
    assert run_row(table, "SAM", 0.05).wins == 5 and run_row(table, "SGD").wins == 3
    pivot = pd.DataFrame({"SGD": [0.1], "LSAM ρ=0.1": [0.2]})
    assert run_column(pivot, "LSAM", 0.1).tolist() == [0.2]
    with pytest.raises(KeyError, match=r"no run \('SAM', rho=0.2\) in the table's rows: it has \['SGD', "):
        run_row(table, "SAM", 0.2)
    with pytest.raises(KeyError, match="columns"):
        run_column(pivot, "SAM", 0.05)
