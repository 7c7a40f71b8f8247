"""The image chapters' checked outputs that hold on any CPU: a live run against the shipped study within a tolerance
(samlib.experiments.agreement), the first updates in float64 (runs.first_steps), the thread-count switch of
.ci/check_kernels (samlib.repro.book_threads) and the generous wait for nbval's output messages (conftest.py)."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import samlib.optim.sam as sam_module
from samlib.experiments import agreement, cifar_mnist, runs, waterbirds
from samlib.experiments.runs import RunSpec, TrainConfig
from samlib.models import FeaturesAndHead
from samlib.repro import BOOK_THREADS, book_threads, configure, seed_everything

ROOT = Path(__file__).resolve().parents[1]
TOLERANCES = {"hard_probe": 0.01, "train_loss": 0.003}


def _rows(hard=(0.70, 0.72), loss=(0.010, 0.020)):
    return pd.DataFrame({"optimizer": ["SGD", "SAM"], "rho": [0.0, 0.05], "seed": [0, 0], "hard_probe": list(hard),
                         "train_loss": list(loss)})


def test_live_runs_that_stay_within_every_tolerance_agree():
    table = agreement.compare_with_study(_rows(hard=(0.705, 0.715), loss=(0.012, 0.018)), _rows(), TOLERANCES)
    assert list(table.index) == ["SGD", "SAM ρ=0.05"] and table[("all", "agrees")].all()
    assert table.loc["SAM ρ=0.05", ("hard_probe", "difference")] == pytest.approx(0.005)
    assert table.loc["SGD", ("train_loss", "study")] == 0.010
    line = agreement.agreement_line(table, TOLERANCES)
    assert line == ("this page's SGD, SAM ρ=0.05 agree with the shipped study's runs of the same seed (hard probe "
                    "within 0.01, train loss within 0.003): yes")


def test_one_metric_off_by_more_than_its_tolerance_is_named():
    table = agreement.compare_with_study(_rows(hard=(0.70, 0.735)), _rows(), TOLERANCES)
    assert list(table[("all", "agrees")]) == [True, False]
    assert agreement.agreement_line(table, TOLERANCES).endswith("NO (SAM ρ=0.05: hard probe 0.7350 vs 0.7200)")


def test_a_difference_equal_to_the_tolerance_agrees_and_a_nan_does_not():
    table = agreement.compare_with_study(_rows(hard=(0.71, float("nan"))), _rows(hard=(0.70, 0.72)),
                                         {"hard_probe": 0.0100001})
    assert list(table[("all", "agrees")]) == [True, False]


@pytest.mark.parametrize("live, study, tolerances, error, match", [
    (_rows(), _rows(), {}, ValueError, "non-empty"),
    (_rows(), _rows(), {"hard_probe": 0}, ValueError, r"tolerances\['hard_probe'\]"),
    (_rows(), _rows(), {"hard_probe": float("nan")}, ValueError, "hard_probe"),
    (_rows(), _rows().drop(columns="train_loss"), TOLERANCES, KeyError, "study has no column"),
    (_rows().assign(seed=[0, 1]), _rows(), TOLERANCES, KeyError, "the study has no run"),
    (_rows(), pd.concat([_rows(), _rows()]), TOLERANCES, ValueError, "holds a run twice"),
])
def test_bad_comparisons_are_refused(live, study, tolerances, error, match):
    with pytest.raises(error, match=match):
        agreement.compare_with_study(live, study, tolerances)


@pytest.mark.parametrize("module", [cifar_mnist, waterbirds])
def test_each_image_chapter_states_its_tolerances_for_metrics_its_evaluation_returns(module):
    """Every tolerance is positive and small against the metric's range (a probe's accuracy, a training loss)."""
    tolerances = module.LIVE_TOLERANCES
    assert tolerances and all(0 < t <= 0.02 for t in tolerances.values())
    assert "train_loss" in tolerances


def _tiny_model(dtype=torch.float32):
    return FeaturesAndHead(nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh()), nn.Linear(4, 2)).to(dtype)


def _tiny_data():
    generator = torch.Generator().manual_seed(3)
    return torch.randn(20, 2, 3, generator=generator), torch.randint(0, 2, (20,), generator=generator)


CONFIG = TrainConfig(epochs=1, lr=0.1, momentum=0.9, batch_size=8)


def test_first_steps_of_sgd_equal_momentum_steps_by_hand():
    images, labels = _tiny_data()
    table = runs.first_steps(_tiny_model, images, labels, [RunSpec("SGD", 0.0, 4)], CONFIG, steps=2)
    seed_everything(4)
    model = _tiny_model(torch.float64)
    weights = [p.detach().clone() for p in model.parameters()]
    x, y = images[:8].double(), labels[:8]

    def loss_at(ws):
        (w1, b1, w2, b2) = ws
        return F.cross_entropy(F.linear(torch.tanh(F.linear(x.flatten(1), w1, b1)), w2, b2), y)

    losses, buffers = [], None
    for _ in range(2):
        ws = [w.clone().requires_grad_() for w in weights]
        loss = loss_at(ws)
        grads = torch.autograd.grad(loss, ws)
        buffers = list(grads) if buffers is None else [0.9 * b + g for b, g in zip(buffers, grads)]
        weights = [w - 0.1 * b for w, b in zip(weights, buffers)]
        losses.append(loss.item())
    losses.append(loss_at(weights).item())
    row = table.iloc[0]
    assert [row["loss 0"], row["loss 1"], row["loss 2"]] == pytest.approx(losses, rel=1e-12)
    seed_everything(4)
    start = [p.detach().double() for p in _tiny_model().parameters()]
    moved = torch.sqrt(sum((w - w0).pow(2).sum() for w, w0 in zip(weights, start))).item()
    assert row["moved"] == pytest.approx(moved, rel=1e-12)
    assert list(table.columns) == ["optimizer", "rho", "seed", "label", "loss 0", "loss 1", "loss 2", "moved"]


def test_first_steps_tell_sam_and_lsam_from_sgd_and_a_reversed_ascent(monkeypatch):
    """SAM and LSAM start where SGD starts and then take other steps; a SAM whose ascent is reversed takes yet
    another, which is what makes these digits a check on the optimizers."""
    images, labels = _tiny_data()
    specs = [RunSpec("SGD", 0.0, 1), RunSpec("SAM", 0.2, 1), RunSpec("LSAM", 0.5, 1)]
    table = runs.first_steps(_tiny_model, images, labels, specs, CONFIG).set_index("label")
    assert table["loss 0"].nunique() == 1
    assert table["loss 3"].round(10).nunique() == 3 and table["moved"].round(10).nunique() == 3
    reference = runs.first_steps(_tiny_model, images, labels, specs[1:2], CONFIG)
    ascent = sam_module.ascent
    monkeypatch.setattr(sam_module, "ascent", lambda *args, **kwargs: [-step for step in ascent(*args, **kwargs)])
    reversed_ascent = runs.first_steps(_tiny_model, images, labels, specs[1:2], CONFIG)
    assert abs(reversed_ascent["loss 3"].item() - reference["loss 3"].item()) > 1e-4


def test_first_steps_are_the_same_under_another_thread_count():
    images, labels = _tiny_data()
    specs = [RunSpec("SAM", 0.2, 2)]
    tables = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        tables.append(runs.first_steps(_tiny_model, images, labels, specs, CONFIG))
    pd.testing.assert_frame_equal(tables[0], tables[1], rtol=1e-12)


def test_first_steps_refuses_a_bad_step_count():
    images, labels = _tiny_data()
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        runs.first_steps(_tiny_model, images, labels, [RunSpec("SGD")], CONFIG, steps=0)


def test_the_thread_count_comes_from_the_environment_where_it_is_set(monkeypatch):
    monkeypatch.delenv("SAMLIB_THREADS", raising=False)
    assert book_threads() == BOOK_THREADS
    monkeypatch.setenv("SAMLIB_THREADS", " 1 ")
    assert book_threads() == 1
    configure()
    assert torch.get_num_threads() == 1
    configure(threads=2)  # an explicit count wins
    assert torch.get_num_threads() == 2
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("SAMLIB_THREADS", bad)
        with pytest.raises(ValueError, match=r"\$SAMLIB_THREADS="):
            book_threads()


def test_nbval_waits_generously_for_a_cells_output_messages():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    cell, other = SimpleNamespace(output_timeout=5), SimpleNamespace()
    conftest.pytest_collection_modifyitems([cell, other])
    assert cell.output_timeout == conftest.NBVAL_OUTPUT_TIMEOUT >= 60 and not hasattr(other, "output_timeout")


def test_side_by_side_reads_one_column_per_run():
    table = agreement.side_by_side(agreement.compare_with_study(_rows(hard=(0.705, 0.715)), _rows(), TOLERANCES))
    assert list(table.columns) == ["SGD", "SAM ρ=0.05"]
    assert list(table.index) == [("hard probe", "this page"), ("hard probe", "study"), ("hard probe", "difference"),
                                 ("train loss", "this page"), ("train loss", "study"), ("train loss", "difference")]
    assert table.loc[("hard probe", "difference"), "SAM ρ=0.05"] == pytest.approx(0.005)
