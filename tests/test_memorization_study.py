"""The noise-memorization seed study (samlib.memorization.study): the claim's pairs and its meaningful gain against
hand-made rows, bad input, and the shipped study against a re-run of its rows."""
import numpy as np
import pandas as pd
import pytest

from samlib.memorization import study
from samlib.memorization.presets import BOOK


def _rows(seed_set, cells):
    """cells: {(n, mu_norm): [(sgd, sam) per seed]}"""
    rows = []
    for (n, mu), pairs in cells.items():
        for seed, (sgd, sam) in enumerate(pairs):
            rows += [dict(n=n, mu_norm=mu, seed=seed, tau=0.0, optimizer="SGD", test_error=sgd, seed_set=seed_set),
                     dict(n=n, mu_norm=mu, seed=seed, tau=0.5, optimizer="SAM", test_error=sam, seed_set=seed_set)]
    return pd.DataFrame(rows)


def test_the_claim_pairs_only_the_theorys_harmful_region():
    # n ||mu||^4 / (d sigma_p^4) with d = 1000, sigma_p = 1: (20, 2.0) -> 0.32 (harmful), (160, 4.0) -> 41 (benign)
    assert BOOK.setting.d == 1000 and BOOK.setting.sigma_p == 1.0
    frame = pd.concat([_rows("tuning", {(20, 2.0): [(0.3, 0.1), (0.4, 0.2)], (160, 4.0): [(0.0, 0.05), (0.0, 0.0)]}),
                       _rows("held out", {(20, 2.0): [(0.2, 0.3)]})])
    sam, sgd = study.claim_pairs(frame, "tuning")
    assert list(sam) == [0.1, 0.2] and list(sgd) == [0.3, 0.4]
    assert study.meaningful_gain(frame) == pytest.approx(-0.25 * 0.35)
    sam, sgd = study.claim_pairs(frame, "held out")
    assert list(sam) == [0.3] and list(sgd) == [0.2]


def test_the_claim_pairs_refuse_an_unknown_seed_set_and_unpaired_runs():
    frame = _rows("tuning", {(20, 2.0): [(0.3, 0.1), (0.4, 0.2)]})
    with pytest.raises(ValueError, match="seed_set: expected one of \\['tuning'\\], got 'held-out'"):
        study.claim_pairs(frame, "held-out")
    with pytest.raises(ValueError, match="exactly one SGD run and one SAM run"):
        study.claim_pairs(frame.iloc[1:], "tuning")


def test_the_shipped_study_holds_both_seed_sets_on_the_whole_map():
    frame = study.load_study()
    per_seed = len(BOOK.ns) * len(BOOK.mu_norms) * 2
    for name, seeds in study.SEED_SETS.items():
        rows = frame[frame.seed_set == name]
        assert sorted(rows.seed.unique()) == sorted(seeds) and len(rows) == per_seed * len(seeds)
    assert not set(study.TUNING_SEEDS) & set(study.HELD_OUT_SEEDS) and len(study.HELD_OUT_SEEDS) >= 10
    assert set(frame[frame.optimizer == "SAM"].tau) == {BOOK.tau}


def test_a_held_out_seed_of_the_shipped_study_comes_back():
    """One held-out seed trained again: float32 training, so within a few test points (2000 of them) on any CPU."""
    frame = study.load_study()
    again = study.run_study({"held out": (study.HELD_OUT_SEEDS[0],)}, progress=False)
    shipped = frame[(frame.seed_set == "held out") & (frame.seed == study.HELD_OUT_SEEDS[0])]
    key = ["n", "mu_norm", "optimizer"]
    both = again.merge(shipped, on=key, suffixes=("", "_shipped"))
    assert len(both) == len(again) == len(shipped)
    assert np.abs(both.test_error - both.test_error_shipped).max() <= 0.01
