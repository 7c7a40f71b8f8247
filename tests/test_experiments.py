"""samlib.experiments: seeded runs, their resume, summaries over seeds, and the two chapters' evaluations.

References are independent of the code under test: hand-made result tables, hand-counted group accuracies,
torch.optim.SGD and samlib.LSAM driven by samlib.train.fit directly, and features that read one half of a
domino (or the background colour) by construction.
"""
import inspect
import math
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from samlib import scale
from samlib.decompose import decompose
from samlib.experiments import cifar_mnist, levers, runs, waterbirds
from samlib.experiments.runs import RunSpec, TrainConfig
from samlib.models import FeaturesAndHead, SmallCNN, resnet
from samlib.optim import LSAM, SAM
from samlib.repro import seed_everything
from samlib.train import TensorBatches, fit

CONFIG = TrainConfig(epochs=2, lr=0.05, momentum=0.9, batch_size=16)


def _data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 2, (n,), generator=g)


def _model():
    return SmallCNN(1, 2, (4, 8), batchnorm=True)


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()])


# --- specs and configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("args, match", [(("Adam", 0.1), "optimizer must be one of 'SGD', 'SAM', 'LSAM'; got str"),
                                         (("SGD", 0.1), "SGD takes rho=0"), (("SAM", 0.0), "rho > 0"),
                                         (("LSAM", -0.1), "rho"), (("SAM", math.nan), "rho"),
                                         (("LSAM", 0.1, -1), "seed"), (("LSAM", 0.1, 1.5), "seed")])
def test_bad_specs_are_refused(args, match):
    with pytest.raises((TypeError, ValueError), match=match):  # TypeError: a float seed
        RunSpec(*args)


def test_spec_labels_and_grid_order():
    assert RunSpec("SGD").label == "SGD" and RunSpec("LSAM", 0.1, 2).label == "LSAM ρ=0.1"
    assert RunSpec("LSAM", 0.1, 2).name == "LSAM-rho0.1-seed2"
    grid = runs.specs({"SGD": [0], "LSAM": [0.1, 0.5]}, seeds=[0, 1])
    assert [(s.optimizer, s.rho, s.seed) for s in grid] == [("SGD", 0, 0), ("LSAM", 0.1, 0), ("LSAM", 0.5, 0),
                                                             ("SGD", 0, 1), ("LSAM", 0.1, 1), ("LSAM", 0.5, 1)]


@pytest.mark.parametrize("kwargs", [dict(epochs=0), dict(epochs=2.5), dict(epochs=1, lr=-1),
                                    dict(epochs=1, lr=math.inf),
                                    dict(epochs=1, momentum=1.0), dict(epochs=1, weight_decay=-1e-4),
                                    dict(epochs=1, batch_size=0)])
def test_bad_train_configs_are_refused(kwargs):
    with pytest.raises((TypeError, ValueError), match=next(iter(kwargs.keys() - {"epochs"}), "epochs")):
        TrainConfig(**kwargs)


def test_lsam_needs_a_linear_head():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(TypeError, match="FeaturesAndHead"):
        runs.make_optimizer(model, RunSpec("LSAM", 0.1), CONFIG)
    assert isinstance(runs.make_optimizer(_model(), RunSpec("SAM", 0.1), CONFIG), SAM)


# --- training runs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer, rho", [("SGD", 0.0), ("LSAM", 0.3)])
def test_train_run_equals_fit_with_the_named_optimizer(optimizer, rho):
    """The reference builds the optimizer itself (torch.optim.SGD, or samlib.LSAM on the head) and calls fit."""
    x, y = _data()
    model, history = runs.train_run(_model, x, y, RunSpec(optimizer, rho, seed=3), CONFIG, progress=False)
    seed_everything(3)
    reference = _model()
    kwargs = dict(lr=CONFIG.lr, momentum=CONFIG.momentum)
    opt = (torch.optim.SGD(reference.parameters(), **kwargs) if optimizer == "SGD"
           else LSAM(reference.parameters(), torch.optim.SGD, head=reference.head, rho=rho, **kwargs))
    fit(reference, opt, TensorBatches(x, y, batch_size=16), epochs=2, progress=False)
    torch.testing.assert_close(_flat(model), _flat(reference), rtol=0, atol=0)
    assert len(history) == 2 and not model.training


def test_train_run_is_deterministic_and_seeded():
    x, y = _data()
    spec = RunSpec("SAM", 0.05, seed=1)
    a, b = (runs.train_run(_model, x, y, spec, CONFIG, progress=False)[0] for _ in range(2))
    other = runs.train_run(_model, x, y, replace(spec, seed=2), CONFIG, progress=False)[0]
    assert torch.equal(_flat(a), _flat(b)) and not torch.equal(_flat(a), _flat(other))
    lsam = runs.train_run(_model, x, y, RunSpec("LSAM", 0.05, seed=1), CONFIG, progress=False)[0]
    assert not torch.equal(_flat(a), _flat(lsam))


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    x, y = _data()
    spec = RunSpec("LSAM", 0.2, seed=0)
    straight = runs.train_run(_model, x, y, spec, replace(CONFIG, epochs=3), progress=False)[0]
    path = tmp_path / "run.pt"
    runs.train_run(_model, x, y, spec, replace(CONFIG, epochs=1), checkpoint=path, progress=False)  # "killed" here
    resumed, history = runs.train_run(_model, x, y, spec, replace(CONFIG, epochs=3), checkpoint=path, progress=False)
    torch.testing.assert_close(_flat(resumed), _flat(straight), rtol=0, atol=0)
    assert history.column("epoch") == [1, 2, 3]
    again, _ = runs.train_run(_model, x, y, spec, replace(CONFIG, epochs=3), checkpoint=path, progress=False)
    assert torch.equal(_flat(again), _flat(straight))  # a finished run is loaded, not retrained


def test_train_run_refuses_mismatched_data():
    x, y = _data()
    with pytest.raises(ValueError, match="as many labels"):
        runs.train_run(_model, x, y[:-1], RunSpec("SGD"), CONFIG)


def test_run_study_rows_models_and_checkpoints(tmp_path):
    x, y = _data()
    grid = runs.specs({"SGD": [0], "LSAM": [0.1]}, seeds=[0, 1])
    calls = []

    def evaluate(model, spec):
        calls.append(spec)
        return {"n_params": sum(p.numel() for p in model.parameters())}

    study = runs.run_study(_model, x, y, grid, CONFIG, evaluate, checkpoint_dir=tmp_path / "ck", progress=False)
    assert calls == grid and list(study.frame.label) == ["SGD", "LSAM ρ=0.1"] * 2
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == sorted(f"{s.name}.pt" for s in grid)
    assert study.frame.train_loss.tolist() == [study.histories[s].last["train_loss"] for s in grid]
    assert study.model("LSAM", 0.1, 1) is study.models[grid[3]]
    with pytest.raises(ValueError, match="distinct"):
        runs.run_study(_model, x, y, grid + grid[:1], CONFIG, evaluate)


def test_network_decomposition_and_predict_match_the_model():
    x, y = _data()
    model = runs.train_run(_model, x, y, RunSpec("SGD"), CONFIG, progress=False)[0]
    parts = runs.network_decomposition(model, x, y, 0.5)
    direct = decompose(model.features(x), y, model.head, 0.5, "cross_entropy")
    torch.testing.assert_close(parts.phantom_weights, direct.phantom_weights)
    assert torch.equal(runs.predict(model, x), model(x).argmax(1))


# --- the chapters' presets and evaluations -----------------------------------------------------------------


class _Reads(nn.Module):
    """Features that read one region of the image by construction: the mean of rows [top, bottom) per channel."""

    def __init__(self, rows):
        super().__init__()
        self.rows = rows
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x[:, :, self.rows[0]:self.rows[1]].mean((2, 3)) + 0 * self.anchor


def test_presets_follow_the_scale():
    try:
        scale.set_scale("paper")
        assert cifar_mnist.preset() is cifar_mnist.PAPER and waterbirds.preset() is waterbirds.PAPER
        scale.set_scale("book")
        assert cifar_mnist.preset() is cifar_mnist.BOOK and waterbirds.preset() is waterbirds.BOOK
    finally:
        scale.set_scale(None)


@pytest.mark.parametrize("module", [cifar_mnist, waterbirds])
def test_real_data_needs_a_folder_and_unknown_data_is_refused(module):
    with pytest.raises(ValueError, match="root="):
        module.load_sets(module.PAPER)
    with pytest.raises(ValueError, match="unknown data"):
        module.load_sets(replace(module.BOOK, data="imagenet"))


def test_paper_models_say_how_to_get_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as on this machine's CPU torch build
    with pytest.raises(ImportError, match="pip install torchvision"):
        resnet(18, 2)
    with pytest.raises(ImportError, match="pip install torchvision"):
        cifar_mnist.build_model(replace(cifar_mnist.PAPER, model="resnet18"), _sets_of(3))
    with pytest.raises(ValueError, match="unknown model"):
        waterbirds.build_model(replace(waterbirds.BOOK, model="vgg"), _sets_of(3))


def _sets_of(channels: int):
    return SimpleNamespace(train=SimpleNamespace(images=torch.zeros(1, channels, 8, 8)))


def test_both_image_chapters_share_one_interface():
    for module in (cifar_mnist, waterbirds):
        for name in ("preset", "load_sets", "build_model", "hard_only_set", "pixel_probes", "evaluate", "metrics"):
            assert callable(getattr(module, name)), (module.__name__, name)
        assert list(inspect.signature(module.build_model).parameters) == ["config", "sets"]
        assert list(inspect.signature(module.evaluate).parameters)[:3] == ["model", "sets", "gini_rho"]
        assert list(inspect.signature(module.metrics).parameters) == ["model", "sets", "config"]
        assert list(inspect.signature(module.pixel_probes).parameters) == ["sets", "solver"]
        assert module.preset().bed is module and module.PAPER.bed is module
    model = cifar_mnist.build_model(cifar_mnist.STAND_IN, _sets_of(1))
    assert model(torch.zeros(2, 1, 56, 28)).shape == (2, 2)


def test_cifar_mnist_evaluation_reads_the_half_the_features_see():
    config = replace(cifar_mnist.STAND_IN, n_train=200, n_probe=400)
    sets = cifar_mnist.load_sets(config)
    assert sets.train.agreement == 1.0 and abs(sets.probe_test.agreement - 0.5) < 0.1
    assert sets.train.images.shape[1:] == (1, 56, 28) and "Fashion-MNIST" in sets.source
    top_reader = FeaturesAndHead(_Reads((0, 28)), nn.Linear(1, 2))
    with torch.no_grad():
        top_reader.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        top_reader.head.bias.zero_()
    metrics = cifar_mnist.evaluate(top_reader, sets, 0.5)
    assert metrics["easy_probe"] > 0.85 and abs(metrics["hard_probe"] - 0.5) < 0.1  # ink of the digit: 1 has less
    expected = (top_reader(sets.test.images).argmax(1) == sets.test.y).double().mean()
    assert metrics["test_acc"] == pytest.approx(float(expected))
    assert 0 <= metrics["gini_real"] < 1 and 0 <= metrics["gini_phantom"] < 1
    exact = cifar_mnist.evaluate(top_reader, sets, 0.5, solver="newton-cholesky")  # solved to the optimum
    assert exact["easy_probe"] > 0.85 and abs(exact["hard_probe"] - 0.5) < 0.1
    assert {k: exact[k] for k in ("test_acc", "gini_real")} == {k: metrics[k] for k in ("test_acc", "gini_real")}
    with pytest.raises(ValueError, match="solver must be one of 'lbfgs', 'newton-cholesky'; got str 'sgd'"):
        cifar_mnist.evaluate(top_reader, sets, 0.5, solver="sgd")
    with pytest.raises(ValueError, match="solver must be one of"):
        cifar_mnist.pixel_probes(sets, solver="sgd")


def test_group_accuracies_by_hand():
    data = waterbirds.waterbirds_standin("test", 8, seed=0)
    predictions = data.y.clone()
    predictions[data.group == 3] = 0  # every waterbird-on-water image wrong
    first = int(torch.nonzero(data.group == 0)[0])
    predictions[first] = 1  # one of the two landbird-on-land images wrong
    assert waterbirds.group_accuracies(predictions.numpy(), data).tolist() == [0.5, 1.0, 1.0, 0.0]
    only_land = replace(data, group=data.group % 2)
    assert np.isnan(waterbirds.group_accuracies(predictions.numpy(), only_land)[2:]).all()


def test_waterbirds_evaluation_of_a_background_reader():
    config = replace(waterbirds.BOOK, n_train=200, n_eval=200)
    sets = waterbirds.load_sets(config)
    assert abs(sets.train.agreement - 0.95) < 1e-9 and sets.test.group.bincount().tolist() == [50] * 4
    always_land = FeaturesAndHead(_Reads((0, 32)), nn.Linear(3, 2))
    with torch.no_grad():
        always_land.head.weight.zero_()
        always_land.head.bias.zero_()  # equal logits: argmax takes the first class (documented), 'landbird'/'top'
    metrics = waterbirds.evaluate(always_land, sets, 0.5)
    assert [metrics[f"group_{g}_acc"] for g in range(4)] == [1.0, 1.0, 0.0, 0.0]
    assert metrics["worst_group_acc"] == 0.0 and metrics["avg_acc"] == 0.5
    assert metrics["background_probe"] > 0.95  # the mean colour tells land from water
    assert metrics["gini_real"] == pytest.approx(0.0, abs=1e-6)  # p = 1/2 for every example: equal weights
    assert metrics["minority_share_real"] == pytest.approx(0.05)  # equal weights: the minority's share is its size
    assert waterbirds.evaluate(always_land, sets, 0.5, solver="newton-cholesky")["background_probe"] > 0.95
    with pytest.raises(ValueError, match="solver must be one of"):
        waterbirds.evaluate(always_land, sets, 0.5, solver="sgd")
    shared = waterbirds.metrics(always_land, sets, config)  # the test beds' columns: object hard, background easy
    assert (shared["hard_probe"], shared["easy_probe"], shared["test_acc"]) == (
        metrics["core_probe"], metrics["background_probe"], metrics["avg_acc"])
    assert {k: shared[k] for k in waterbirds.MORE_COLUMNS} == {k: metrics[k] for k in waterbirds.MORE_COLUMNS}
    pixels = waterbirds.pixel_probes(sets)
    assert pixels["easy_probe"] > pixels["hard_probe"] and set(pixels) == {"easy_probe", "hard_probe"}
    control = waterbirds.hard_only_set(config)
    assert len(control) == config.n_train and abs(control.agreement - 0.5) < 0.1  # only the object predicts y
    with pytest.raises(ValueError, match="the hard-only control is drawn from the stand-in"):
        waterbirds.hard_only_set(waterbirds.PAPER)


# --- the levers study ------------------------------------------------------------------------------------


def test_each_lever_changes_one_setting_of_the_book_preset():
    from dataclasses import fields


    for chapter, book in (("cifar_mnist", cifar_mnist.STAND_IN), ("waterbirds", waterbirds.BOOK)):
        for name, lever in levers.LEVERS[chapter].items():
            config, optimizers, seeds = lever.settings, lever.radii, lever.seeds
            changed = [f.name for f in fields(config) if getattr(config, f.name) != getattr(book, f.name)]
            if not changed:  # the same preset, other radii
                assert optimizers != book.optimizers, (chapter, name)
            else:
                assert len(changed) == 1 or changed == ["agreement", "follows"], (chapter, name, changed)  # one rule
            assert "SGD" in optimizers and len(optimizers) > 1 and 0 in seeds


def test_lever_results_are_shipped_and_bad_chapters_are_refused():

    for chapter in levers.LEVERS:
        frame = levers.load_levers(chapter)  # committed with samlib (package data), printed by the chapters
        assert set(frame.lever) == set(levers.LEVERS[chapter]) and (frame.label == "SGD").any()
    with pytest.raises(ValueError, match="unknown chapter"):
        levers.load_levers("celeba")
    curves = levers.load_levers("cifar_mnist", curves=True)
    epochs = levers.CURVES["cifar_mnist"][0].train.epochs
    per_run = curves.groupby("label").epoch.apply(list)
    assert len(per_run) == 3 and all(seen == list(range(1, epochs + 1)) for seen in per_run)
    with pytest.raises(ValueError, match="unknown chapter"):
        levers.load_levers("waterbirds", curves=True)


def test_train_run_can_evaluate_after_every_epoch():
    x, y = _data()
    seen = []

    def evaluate(model):
        seen.append(model.training)
        return {"bias": float(model.head.bias[0])}

    model, history = runs.train_run(_model, x, y, RunSpec("SGD"), CONFIG, progress=False, evaluate_each_epoch=evaluate)
    assert seen == [False, False] and history.column("bias")[-1] == pytest.approx(float(model.head.bias[0]))
