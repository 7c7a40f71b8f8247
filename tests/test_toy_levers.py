"""The toy's levers (``ToySettings``: head weight decay, a fixed-norm head, normalized features, the squared hinge
loss) against independent references: a hand-written loss differentiated by autograd and by finite differences,
the defining invariants, and the default path left bit for bit as it was."""
import dataclasses

import pytest
import torch

from samlib.toy.data import make_toy
from samlib.toy.model import HEAD, features, init_params
from samlib.toy.sweep import PHANTOM_PARTS, Run, ToySettings, grid, sweep_step, train_sweep

F64 = torch.float64
BASE = ToySettings(n=40, hidden=6, lr=0.1, momentum=0.0, steps=30, batch_size=None, log_every=5)


def _setup(seed=0):
    data = make_toy(40, 0.5, seed=seed, dtype=F64)
    params = init_params([seed], hidden=6, dtype=F64)
    return params, (data.x_easy[None], data.x_hard[None], data.y[None])


def _step(params, batch, settings, rho=0.0, optimizer="SGD", recombined=False):
    buffers = {k: torch.zeros_like(p) for k, p in params.items()}
    parts = torch.tensor([PHANTOM_PARTS[optimizer]], dtype=F64) if recombined else None
    sweep_step(params, buffers, batch, torch.tensor([rho], dtype=F64),
               torch.tensor([float(optimizer == "SAM")], dtype=F64), settings, parts)
    return params


def _hand_loss(params, batch, settings):
    """The lever's loss written out for one run, independently of samlib.toy.sweep."""
    phi = features(params, *batch[:2])[0]
    if settings.normalize_features:
        phi = phi / torch.sqrt((phi ** 2).mean(dim=0) + 1e-12)
    margins = batch[2][0] * (phi @ params[HEAD][0])
    if settings.loss == "squared_hinge":
        return (torch.clamp(1 - margins, min=0) ** 2).mean()
    return torch.log1p(torch.exp(-margins)).mean()


@pytest.mark.parametrize("lever", [{"loss": "squared_hinge"}, {"normalize_features": True}])
def test_an_sgd_step_follows_the_hand_written_loss_of_the_lever(lever):
    settings = dataclasses.replace(BASE, **lever)
    params, batch = _setup()
    leaves = {k: p.clone().requires_grad_(True) for k, p in params.items()}
    grads = torch.autograd.grad(_hand_loss(leaves, batch, settings), list(leaves.values()))
    stepped = _step({k: p.clone() for k, p in params.items()}, batch, settings)
    for (k, p), g in zip(params.items(), grads):
        assert torch.allclose(stepped[k], p - 0.1 * g, atol=1e-12), k


def test_the_squared_hinge_gradient_matches_finite_differences():
    settings = dataclasses.replace(BASE, loss="squared_hinge")
    params, batch = _setup(1)
    stepped = _step({k: p.clone() for k, p in params.items()}, batch, settings)
    grad = (params[HEAD] - stepped[HEAD]) / 0.1  # the step's gradient of the head
    for i in range(2):
        shift = torch.zeros_like(params[HEAD])
        shift[0, i] = 1e-6
        up, down = ({**params, HEAD: params[HEAD] + s * shift} for s in (1, -1))
        numeric = (_hand_loss(up, batch, settings) - _hand_loss(down, batch, settings)) / 2e-6
        assert grad[0, i].item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-9)


def test_head_weight_decay_decays_the_head_alone():
    params, batch = _setup()
    plain = _step({k: p.clone() for k, p in params.items()}, batch, BASE)
    decayed = _step({k: p.clone() for k, p in params.items()}, batch, dataclasses.replace(BASE, head_weight_decay=0.5))
    assert torch.allclose(decayed[HEAD], plain[HEAD] - 0.1 * 0.5 * params[HEAD], atol=1e-12)
    assert all(torch.equal(decayed[k], plain[k]) for k in params if k != HEAD)


def test_a_fixed_norm_head_keeps_its_norm_at_every_logged_step():
    settings = dataclasses.replace(BASE, head_norm=0.5)
    result = train_sweep(grid({"SGD": [0.0], "LSAM": [0.5]}, [0.5], [0, 1]), settings, progress=False)
    norms = result.history["v"].norm(dim=-1)
    assert torch.allclose(norms, torch.full_like(norms, 0.5), atol=1e-12)
    assert torch.allclose(result.params[HEAD].norm(dim=-1), torch.full((4,), 0.5, dtype=F64), atol=1e-12)
    free = train_sweep(grid({"SGD": [0.0]}, [0.5], [0]), BASE, progress=False)
    assert not torch.allclose(free.params[HEAD].norm(dim=-1), torch.tensor([0.5], dtype=F64))


def test_a_fixed_norm_head_step_is_the_free_step_rescaled():
    settings = dataclasses.replace(BASE, head_norm=0.5)
    params, batch = _setup()
    params[HEAD] *= 0.5 / params[HEAD].norm()
    free = _step({k: p.clone() for k, p in params.items()}, batch, BASE, rho=0.3, optimizer="LSAM")
    fixed = _step({k: p.clone() for k, p in params.items()}, batch, settings, rho=0.3, optimizer="LSAM")
    assert torch.allclose(fixed[HEAD], free[HEAD] * 0.5 / free[HEAD].norm(), atol=1e-12)
    assert all(torch.equal(fixed[k], free[k]) for k in params if k != HEAD)


def test_normalized_features_make_the_loss_blind_to_a_branchs_output_scale():
    settings = dataclasses.replace(BASE, normalize_features=True)
    params, batch = _setup()
    scaled = {**params, "easy.w2": 3 * params["easy.w2"], "easy.b2": 3 * params["easy.b2"]}
    for s, reference in ((settings, True), (BASE, False)):
        same = torch.allclose(_step({k: p.clone() for k, p in params.items()}, batch, s)[HEAD],
                              _step({k: p.clone() for k, p in scaled.items()}, batch, s)[HEAD], atol=1e-12)
        assert same is reference


@pytest.mark.parametrize("lever", [{"loss": "squared_hinge"}, {"normalize_features": True}, {"head_norm": 0.5},
                                   {"head_weight_decay": 0.1}])
def test_the_ablation_path_takes_the_lever_too(lever):
    """LSAM through the recombined (ablation) step equals LSAM through the one-pass step, for every lever."""
    settings = dataclasses.replace(BASE, **lever)
    params, batch = _setup()
    fast = _step({k: p.clone() for k, p in params.items()}, batch, settings, 0.3, "LSAM")
    recombined = _step({k: p.clone() for k, p in params.items()}, batch, settings, 0.3, "LSAM", recombined=True)
    for k in params:
        assert torch.allclose(fast[k], recombined[k], atol=1e-12), k


def test_the_sam_path_takes_the_lever_too():
    settings = dataclasses.replace(BASE, loss="squared_hinge", normalize_features=True)
    runs = [Run("LSAM", 0.3, 0.5, 0), Run("SGD", 0.0, 0.5, 0)]
    mixed = train_sweep(runs + [Run("SAM", 0.05, 0.5, 0)], settings, progress=False)
    fast = train_sweep(runs, settings, progress=False)
    for k in fast.params:
        assert torch.allclose(mixed.params[k][:2], fast.params[k], atol=1e-10), k


@pytest.mark.parametrize("field, value, match", [
    ("loss", "hinge", "loss must be one of"),
    ("head_norm", 0.0, "head_norm"),
    ("head_norm", -1.0, "head_norm"),
    ("head_weight_decay", -0.1, "head_weight_decay"),
    ("normalize_features", 1, "normalize_features must be True or False"),
])
def test_bad_levers_are_refused_with_the_argument_named(field, value, match):
    with pytest.raises((TypeError, ValueError), match=match):
        ToySettings(**{field: value})
