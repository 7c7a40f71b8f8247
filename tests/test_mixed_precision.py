"""SAM and LSAM with torch.autocast and torch.amp.GradScaler, on the CPU (bfloat16 autocast, a CPU GradScaler).

* a bfloat16-autocast step agrees with the float32 one to bfloat16's precision (and is not the same step);
* the scaler's gradients are unscaled before the ascent norm and the update;
* an inf or NaN gradient, in either pass, leaves weights and momentum exactly as they were and backs the scale off;
* the scaler's state is checkpointed: an interrupted run with a scaler resumes to the uninterrupted one.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from samlib.checkpoint import load_checkpoint
from samlib.models import FeaturesAndHead
from samlib.optim import LSAM, SAM, sam_step
from samlib.train import TensorBatches, fit, train_step

X, Y = torch.randn(16, 5, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3


def net():
    torch.manual_seed(0)
    return FeaturesAndHead(nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU()),
                           nn.Linear(8, 3))


def optimizer(model, kind="SAM", **kwargs):
    options = dict(rho=0.2, lr=0.1, momentum=0.9, **kwargs)
    if kind == "SAM":
        return SAM(model.parameters(), torch.optim.SGD, model=model, **options)
    return LSAM(model.parameters(), torch.optim.SGD, head=model.head, model=model, **options)


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


def scaler(**kwargs):
    return torch.amp.GradScaler("cpu", **{"init_scale": 2.0 ** 12, **kwargs})


@pytest.mark.parametrize("kind", ["SAM", "LSAM"])
def test_a_bfloat16_autocast_step_agrees_with_float32(kind):
    exact, mixed = net(), net()
    opt_exact, opt_mixed = optimizer(exact, kind), optimizer(mixed, kind)
    for _ in range(3):
        train_step(exact, opt_exact, F.cross_entropy, X, Y)
        train_step(mixed, opt_mixed, F.cross_entropy, X, Y, autocast_dtype=torch.bfloat16, scaler=scaler())
    differences = [(a - b).abs().max().item() for a, b in zip(weights(exact), weights(mixed))]
    assert max(differences) < 1e-2  # bfloat16 keeps about 3 digits
    assert max(differences) > 1e-5  # the forward really ran in bfloat16


def test_gradients_are_unscaled_before_the_ascent_norm_and_the_update():
    """eps=0.5 in the norm makes the ascent depend on the gradients' size: a scaled gradient would move
    the phantom point, and a scaled descent gradient the update, by far more than the tolerance."""
    plain, scaled = net(), net()
    opt_plain, opt_scaled = optimizer(plain, eps=0.5), optimizer(scaled, eps=0.5)
    grad_scaler = scaler()
    for _ in range(3):
        sam_step(opt_plain, lambda: F.cross_entropy(plain(X), Y))
        sam_step(opt_scaled, lambda: F.cross_entropy(scaled(X), Y), scaler=grad_scaler)
    for a, b in zip(weights(plain), weights(scaled)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert grad_scaler.get_scale() == 2.0 ** 12  # no overflow, no growth before growth_interval


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
@pytest.mark.parametrize("bad_pass", [1, 2])
@pytest.mark.parametrize("kind", ["SAM", "LSAM"])
def test_a_non_finite_gradient_leaves_weights_and_momentum_untouched(kind, bad_pass, bad):
    model = net()
    opt = optimizer(model, kind)
    grad_scaler = scaler(growth_interval=1)
    sam_step(opt, lambda: F.cross_entropy(model(X), Y), scaler=grad_scaler)  # a good step: momentum exists
    assert grad_scaler.get_scale() == 2.0 ** 13  # it grew after one good step (growth_interval=1)
    before, momentum = weights(model), copy.deepcopy(opt.state_dict()["state"])
    calls = []

    def compute_loss():
        calls.append(1)
        loss = F.cross_entropy(model(X), Y)
        return loss * bad if len(calls) == bad_pass else loss

    sam_step(opt, compute_loss, scaler=grad_scaler)
    assert len(calls) == bad_pass  # an overflowing ascent gradient skips the second pass
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    after = opt.state_dict()["state"]
    assert all(torch.equal(momentum[i]["momentum_buffer"], after[i]["momentum_buffer"]) for i in momentum)
    assert grad_scaler.get_scale() == 2.0 ** 12  # backed off by half
    sam_step(opt, lambda: F.cross_entropy(model(X), Y), scaler=grad_scaler)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # and training goes on


def test_the_scaler_state_is_checkpointed_and_resumed(tmp_path):
    def run(epochs, path, grad_scaler):
        model = net()
        fit(model, optimizer(model), TensorBatches(X, Y, batch_size=4), epochs=epochs, checkpoint=path,
            progress=False, scaler=grad_scaler, autocast_dtype=torch.bfloat16)
        return model

    whole_scaler, part_scaler, resumed_scaler = scaler(growth_interval=3), scaler(growth_interval=3), \
        scaler(growth_interval=3)
    whole = run(3, tmp_path / "whole.pt", whole_scaler)
    run(1, tmp_path / "part.pt", part_scaler)
    assert load_checkpoint(tmp_path / "part.pt")["scaler"] == part_scaler.state_dict()
    resumed = run(3, tmp_path / "part.pt", resumed_scaler)
    assert all(torch.equal(a, b) for a, b in zip(weights(whole), weights(resumed)))
    assert resumed_scaler.state_dict() == whole_scaler.state_dict()
    assert whole_scaler.get_scale() == 2.0 ** 16  # 12 good steps grew it 4 times: the state is not the initial one
    fingerprint = load_checkpoint(tmp_path / "part.pt")["fingerprint"]
    assert fingerprint["run.autocast_dtype"] == "torch.bfloat16" and "growth_interval" in fingerprint["run.grad_scaler"]


def _sam_step_with(**kwargs):
    model = net()
    arguments = {"optimizer": optimizer(model), "compute_loss": lambda: F.cross_entropy(model(X), Y), **kwargs}
    return lambda: sam_step(arguments.pop("optimizer"), arguments.pop("compute_loss"), **arguments)


@pytest.mark.parametrize("call, error, message", [
    (_sam_step_with(scaler=torch.amp.GradScaler), TypeError,
     "scaler must be a torch.amp.GradScaler (or None), got type"),
    (_sam_step_with(optimizer=torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)), TypeError,
     "sam_step takes a samlib SAM or LSAM optimizer, got SGD"),
    (_sam_step_with(compute_loss=lambda: None), TypeError,
     "compute_loss's first call returned NoneType None: it must run the forward pass and return the loss tensor"),
    (_sam_step_with(compute_loss=3.0), TypeError, "compute_loss must be callable, got float"),
])
def test_bad_arguments_are_refused_with_the_fix(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_train_run_in_bfloat16_is_seeded_and_refuses_a_float32_checkpoint(tmp_path):
    from samlib.checkpoint import CheckpointMismatch
    from samlib.experiments.runs import RunSpec, TrainConfig, train_run
    spec, config = RunSpec("SAM", 0.2, seed=1), TrainConfig(epochs=1, batch_size=8)
    first, again = (train_run(net, X, Y, spec, config, progress=False, autocast_dtype=torch.bfloat16)[0]
                    for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(weights(first), weights(again)))
    train_run(net, X, Y, spec, config, progress=False, checkpoint=tmp_path / "run.pt")
    with pytest.raises(CheckpointMismatch, match="run.autocast_dtype: checkpoint \\(absent\\), now torch.bfloat16"):
        train_run(net, X, Y, spec, config, progress=False, checkpoint=tmp_path / "run.pt",
                  autocast_dtype=torch.bfloat16)


def test_an_unsupported_autocast_dtype_is_refused():
    model = net()
    with pytest.raises(ValueError, match="autocast_dtype must be one of torch.bfloat16, torch.float16; got"):
        fit(model, optimizer(model), TensorBatches(X, Y, batch_size=4), epochs=1, autocast_dtype=torch.float64)
