"""One optimizer vocabulary: samlib.optim.registry says what each name perturbs and keeps, every trainer reads it
there, each ablation has one name of record (its other spellings derived from the registry), and SAM's two passes
are one sequence that ``SAM.step`` and ``sam_step`` share.

The expectations below are spelled out by hand, independently of the registry, so that a wrong entry fails here.
"""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from samlib.experiments.runs import TrainConfig, make_optimizer
from samlib.memorization.data import DataSetting
from samlib.memorization.data import Run as PatchRun
from samlib.memorization.train import Training, train_runs
from samlib.models import FeaturesAndHead
from samlib.optim import EFFECTS, LSAM, SAM, AblatedLSAM, backward, registry, sam_step
from samlib.optim.registry import OptimizerInfo
from samlib.plots.mechanism import ABLATION_COLORS
from samlib.toy.sweep import PHANTOM_PARTS, Run, ToySettings, train_sweep

BOOK = {"SGD": ("nothing", None), "SAM": ("all", None), "LSAM": ("head", None),
        "IW-only": ("head", "importance_weighting"), "LR-only": ("head", "lr_scaling")}
PARTS = {"SGD": (False, False), "LSAM": (True, True), "IW-only": (True, False), "LR-only": (False, True)}


def test_the_registry_says_what_the_book_says():
    assert {name: (info.perturbs, info.keeps) for name, info in registry.REGISTRY.items()} == BOOK
    assert registry.OPTIMIZERS == ("SGD", "SAM", "LSAM", "IW-only", "LR-only")
    assert {name: registry.perturbs_all(name) for name in BOOK} == {name: name == "SAM" for name in BOOK}
    assert {name: registry.phantom_parts(name) for name in PARTS} == PARTS
    with pytest.raises(ValueError, match="SAM perturbs every weight"):
        registry.phantom_parts("SAM")


def test_each_ablation_has_one_name_of_record_and_its_other_spellings_come_from_the_registry():
    assert registry.ABLATIONS == ("IW-only", "LR-only")  # what tables print and CSVs store
    assert EFFECTS is registry.EFFECTS and EFFECTS == ("importance_weighting", "lr_scaling")
    assert [registry.effect_of(name) for name in registry.ABLATIONS] == list(EFFECTS)
    assert [registry.ablation_keeping(effect) for effect in EFFECTS] == list(registry.ABLATIONS)
    assert PHANTOM_PARTS == PARTS  # the toy sweep's table, now derived
    assert list(ABLATION_COLORS) == ["SGD", "LSAM", "IW-only", "LR-only"]
    net = FeaturesAndHead(nn.Linear(3, 4), nn.Linear(4, 2))
    for effect, name in zip(EFFECTS, registry.ABLATIONS):
        opt = AblatedLSAM(net.parameters(), torch.optim.SGD, head=net.head, rho=0.1, effect=effect, lr=0.1)
        assert opt.parts == PARTS[name]
    with pytest.raises(ValueError, match="optimizer must be one of 'IW-only', 'LR-only'; got str 'LSAM'"):
        registry.effect_of("LSAM")
    with pytest.raises(ValueError, match="effect must be one of 'importance_weighting', 'lr_scaling'"):
        registry.ablation_keeping("iw")


@pytest.mark.parametrize("kwargs, match", [
    (dict(perturbs="some"), "perturbs must be one of 'nothing', 'head', 'all'; got str 'some'"),
    (dict(perturbs="head", keeps="sharpness"), "keeps must be one of 'importance_weighting', 'lr_scaling'"),
    (dict(perturbs="all", keeps="lr_scaling"), "X keeps 'lr_scaling' but perturbs 'all'"),
])
def test_a_malformed_registry_entry_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimizerInfo("X", **kwargs)


@pytest.mark.parametrize("name, kind, effect", [("SGD", torch.optim.SGD, None), ("SAM", SAM, None),
                                                ("LSAM", LSAM, None), ("IW-only", AblatedLSAM, "importance_weighting"),
                                                ("LR-only", AblatedLSAM, "lr_scaling")])
def test_make_optimizer_builds_the_class_the_registry_names(name, kind, effect):
    net = FeaturesAndHead(nn.Linear(3, 4), nn.Linear(4, 2))
    spec = SimpleNamespace(optimizer=name, rho=0.0 if name == "SGD" else 0.1)
    opt = make_optimizer(net, spec, TrainConfig(epochs=1))
    assert type(opt) is kind and getattr(opt, "effect", None) == effect
    if kind is not torch.optim.SGD:
        assert {g["perturb"]: len(g["params"]) for g in opt.param_groups} == ({True: 4} if name == "SAM"
                                                                               else {False: 2, True: 2})


def test_every_trainer_follows_the_registry(monkeypatch):
    """Mapped to perturb every weight, LSAM trains as SAM in the toy sweep and builds SAM for an image run; mapped to
    perturb the head alone, the memorization trainer's SAM takes no ascent of its whole network (its SGD step)."""
    toy = ToySettings(n=40, hidden=4, steps=3, log_every=1)
    lsam, sam = (train_sweep([Run(name, 0.3, 0.5, 0)], toy, progress=False) for name in ("LSAM", "SAM"))
    assert not torch.equal(lsam.params["v"], sam.params["v"])
    patches = dict(setting=DataSetting(d=8, n_test=4), training=Training(width=2, max_epochs=2, stop_loss=None))
    runs = [PatchRun(8, 1.0, 0, 0.0), PatchRun(8, 1.0, 0, 0.5)]
    before = train_runs(runs, **patches).weights
    assert not torch.equal(before[0], before[1])
    monkeypatch.setitem(registry.REGISTRY, "LSAM", OptimizerInfo("LSAM", "all"))
    monkeypatch.setitem(registry.REGISTRY, "SAM", OptimizerInfo("SAM", "head"))
    as_sam = train_sweep([Run("LSAM", 0.3, 0.5, 0)], toy, progress=False)
    assert all(torch.equal(as_sam.params[k], sam.params[k]) for k in sam.params)
    net = FeaturesAndHead(nn.Linear(3, 4), nn.Linear(4, 2))
    assert type(make_optimizer(net, SimpleNamespace(optimizer="LSAM", rho=0.1), TrainConfig(epochs=1))) is SAM
    after = train_runs(runs, **patches).weights
    assert torch.equal(after[0], after[1])


# --- one two-pass sequence ------------------------------------------------------------------------------------------


def _problem(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1))
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    return model, (lambda: nn.functional.mse_loss(model(x), y))


def test_step_and_sam_step_are_one_sequence():
    """Without DDP and scaler, ``sam_step`` and ``step(closure)`` both run ``two_pass_step``: equal bits."""
    results = []
    for run in ("step", "sam_step", "two_pass_step"):
        model, loss_fn = _problem()
        opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9, model=model)
        for _ in range(2):
            if run == "step":
                opt.step(lambda: backward(loss_fn()))
            elif run == "sam_step":
                sam_step(opt, loss_fn)
            else:
                opt.two_pass_step(lambda: backward(loss_fn()), lambda: backward(loss_fn()), model=model)
        state = [*model.parameters(), *model.buffers()]
        results.append(torch.cat([t.flatten() for t in state if t.is_floating_point()]))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


@pytest.mark.parametrize("skip", ["ascend", "descend"])
def test_a_skipped_two_pass_step_leaves_the_real_weights_and_no_gradient(skip):
    model, loss_fn = _problem()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1, model=model)
    start = [p.detach().clone() for p in model.parameters()]
    second = []
    loss = opt.two_pass_step(lambda: backward(loss_fn()), lambda: second.append(backward(loss_fn())), model=model,
                             **{skip: lambda: False})
    assert loss.item() == pytest.approx(loss_fn().item())  # the first pass's loss, at the real weights
    assert len(second) == (0 if skip == "ascend" else 1)
    assert all(torch.equal(p, p0) for p, p0 in zip(model.parameters(), start))
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    opt.step(lambda: backward(loss_fn()))  # and the next step starts clean
    assert not all(torch.equal(p, p0) for p, p0 in zip(model.parameters(), start))


def test_a_failing_second_pass_puts_the_real_weights_back():
    model, loss_fn = _problem()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1, model=model)
    start = [p.detach().clone() for p in model.parameters()]

    def second():
        backward(loss_fn())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        opt.two_pass_step(lambda: backward(loss_fn()), second, model=model)
    assert all(torch.equal(p, p0) for p, p0 in zip(model.parameters(), start))
    opt.step(lambda: backward(loss_fn()))  # no phantom point was left behind: the next step works
