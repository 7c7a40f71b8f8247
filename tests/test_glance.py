"""Results at a glance (samlib.glance): every claim is computed from the shipped studies with the book's statistic."""
import math

import numpy as np
import pytest

from samlib import glance, results
from samlib.experiments import headroom, testbeds
from samlib.toy import study


def test_every_claim_has_a_verdict_on_both_seed_sets_and_one_row():
    table = glance.glance_table()
    assert list(table.index) == [c.key for c in glance.CLAIMS]
    assert set(table.verdict) <= set(results.VERDICTS)
    assert list(table.columns) == ["claim", "paper's claim", "held-out seeds", "verdict", "tuning seeds", "meaningful",
                                   "train error", "chapter"]
    assert set(glance.LABELS) == set(table.index)
    first_fit = {"equal_fit_lsam", "equal_fit_sam", "m_sam_fit_lsam"}  # the tuning seeds are read at the end only
    for claim in glance.CLAIMS:
        effect, verdict, _ = glance.measure(claim, "tuning")
        assert (effect is None) == (claim.key in first_fit) and verdict in results.VERDICTS, claim.key
        assert glance.measure(claim, "held out")[0] is not None, claim.key
    assert (table.loc[sorted(first_fit), "tuning seeds"] == "not read").all()


def test_the_toy_radius_is_the_toy_studys_own_choice():
    table = study.lever_table(study.load_study())
    chosen = study.best_radii(table)
    assert glance._toy_radius("baseline", "LSAM") == chosen["baseline"]
    assert glance._toy_radius("open_window", "LSAM") == chosen["open_window"]


def test_the_image_pairs_are_the_same_seeds_as_the_studys_comparison():
    """The claim's pairs give the median paired gain the headroom chapter prints for the same runs."""
    frame = testbeds.load_study()
    rows = frame[(frame.bed == glance.CLUTTERED) & (frame.lever == "bed") & (frame.seed_set == "held out")]
    run, sgd, _ = glance._bed_pairs(glance.CLUTTERED, "SAM")("held out")
    rho = testbeds.best_radii(frame[(frame.bed == glance.CLUTTERED) & (frame.lever == "bed")
                                    & (frame.seed_set == "tuning")])["SAM"]
    assert np.median(run - sgd) == pytest.approx(testbeds.comparison(rows).loc[f"SAM ρ={rho:g}", "median gain"])


def test_meaningful_on_an_image_bed_is_a_quarter_of_its_room():
    frame = testbeds.load_study()
    room = headroom.headroom_table(frame[(frame.lever == "bed") & (frame.seed_set == "tuning")]).loc[glance.CLUTTERED]
    claim = next(c for c in glance.CLAIMS if c.key == "cifar_mnist_sam")
    assert glance.meaningful_effect(claim) == pytest.approx(0.25 * (room["hard only"] - room["SGD"]))


def test_five_held_out_seeds_give_no_verdict_and_every_claim_has_held_out_seeds():
    for claim in glance.CLAIMS:
        effect, verdict, _ = glance.measure(claim, "held out")
        assert effect is not None, f"{claim.key} has no held-out seeds"
        if effect.n < results.MIN_SEEDS:
            assert verdict == "too few seeds"


def test_a_replicated_claim_reads_the_new_seeds_when_held_out_and_its_own_when_tuning(monkeypatch):
    """The held-out pairs of a replicated claim are the replication's rows, paired by seed; its tuning pairs are
    the seeds its radius came from."""
    from samlib.experiments import replication

    claim = next(c for c in glance.CLAIMS if c.key == "worst_group_more_data")
    run, sgd, _ = claim.pairs("held out")
    rows = replication.final_rows(glance.NEW_BIRDS)
    assert len(run) == len(replication.REPLICATIONS[glance.NEW_BIRDS].seeds) == len(set(rows.seed))
    by_seed = rows.pivot_table(index="seed", columns="optimizer", values="worst_group_acc")
    assert sorted(run - sgd) == pytest.approx(sorted((by_seed.SAM - by_seed.SGD).to_numpy()))
    tuning, _, _ = claim.pairs("tuning")
    assert len(tuning) == 5


def test_the_effects_for_the_figure_are_in_units_of_the_meaningful_effect():
    frame = glance.effects_frame().set_index(["claim", "seed_set"])
    effect, _, _ = glance.measure(next(c for c in glance.CLAIMS if c.key == "toy_lsam"), "held out")
    assert frame.loc[("toy_lsam", "held out"), "median"] == pytest.approx((1 - effect.median) / 0.5)
    assert math.isnan(frame.loc[("cifar_mnist_sam", "held out"), "low"])  # five seeds: no interval
    assert ("worst_group_more_data", "held out") in frame.index


def test_a_bad_seed_set_is_refused():
    with pytest.raises(ValueError, match="seed_set"):
        glance.measure(glance.CLAIMS[0], "held-out")


def test_the_new_seed_rows_name_their_seed_counts():
    from samlib.experiments import replication

    for key, name in (("cifar_mnist_sam_new", glance.NEW_CLUTTERED), ("cifar_mnist_lsam_new", glance.NEW_CLUTTERED),
                      ("worst_group_more_data", glance.NEW_BIRDS)):
        count = f"{len(replication.REPLICATIONS[name].seeds)} new seeds"
        claim = next(c for c in glance.CLAIMS if c.key == key)
        assert count in glance.LABELS[key] and count.split()[0] in claim.paper, (key, count)
