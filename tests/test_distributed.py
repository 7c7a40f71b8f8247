"""SAM and LSAM under DistributedDataParallel: 2 CPU processes (gloo) started by torchrun, against single-process
references written out by hand.

* synchronized: the DDP step equals the single-process SAM step on the concatenated batch;
* per_device: it equals the step with the average of the per-shard SAM gradients (each shard its own ascent);
* the descent is all-reduced once (per_device: one all-reduce per step; synchronized: two);
* a run killed during an epoch and resumed by torchrun ends with the weights of an uninterrupted one;
* SAM.step and the one-pass LSAM step refuse under DDP, naming sam_step; an overflow on one rank skips the
  step on both.

torchrun starts three times (about 30 s on two cores, most of it importing torch).
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from samlib.checkpoint import load_checkpoint
from samlib.optim import SAM, sam_step

WORKER = Path(__file__).with_name("distributed_worker.py")
spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)


def torchrun(phase: str, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(WORKER), phase, str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAMLIB_PROGRESS": "0"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def ranks(out: Path, phase: str) -> list[dict]:
    return [torch.load(out / f"{phase}-rank{r}.pt") for r in (0, 1)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """What both ranks saw in each phase, and the checkpoint the killed run left behind."""
    out = tmp_path_factory.mktemp("ddp")
    steps = torchrun("steps", out)
    assert steps.returncode == 0, steps.stderr[-3000:]
    killed = torchrun("killed", out)
    assert killed.returncode != 0 and not list(out.glob("killed-rank*.pt")), "the run was meant to be killed"
    left = load_checkpoint(out / "run.pt")
    resumed = torchrun("resumed", out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return {"steps": ranks(out, "steps"), "left": left, "resumed": ranks(out, "resumed")}


# --- the single-process references -------------------------------------------------------------------------


def linear_grads(params, x, y):
    """Gradient of mean((x @ w.T + b - y)**2) for nn.Linear(3, 1), by hand."""
    w, b = params
    r = x @ w.T + b - y  # (n, 1)
    return [2 * r.T @ x / len(y), 2 * r.mean(0)]


def lsam_grads(params, x, y):
    """Gradient of the mean squared error of tanh(x W1.T + b1) @ W2.T + b2 (autograd on a plain function)."""
    params = [p.detach().clone().requires_grad_(True) for p in params]
    w1, b1, w2, b2 = params
    loss = ((torch.tanh(x @ w1.T + b1) @ w2.T + b2 - y) ** 2).mean()
    return list(torch.autograd.grad(loss, params))


def ascent(grads, perturbed):
    """rho g / ||g|| over the perturbed tensors; zero for the others."""
    norm = torch.sqrt(sum((g ** 2).sum() for g, p in zip(grads, perturbed) if p))
    return [worker.RHO * g / norm if p else torch.zeros_like(g) for g, p in zip(grads, perturbed)]


def reference(kind, mode):
    """The weights after worker.STEPS SAM steps (SGD base) of worker.net(kind) on the two shards of the batch."""
    grads = linear_grads if kind == "SAM" else lsam_grads
    perturbed = [True, True] if kind == "SAM" else [False, False, True, True]
    x, y = worker.batch()
    shards = [(x[:4], y[:4]), (x[4:], y[4:])]
    params = [p.detach().clone() for p in worker.net(kind).parameters()]
    for _ in range(worker.STEPS):
        def mean(per_shard):
            return [sum(gs) / len(gs) for gs in zip(*per_shard)]
        if mode == "synchronized":
            eps = ascent(mean([grads(params, *s) for s in shards]), perturbed)
            descent = mean([grads([p + e for p, e in zip(params, eps)], *s) for s in shards])
        else:
            descent = mean([grads([p + e for p, e in zip(params, ascent(grads(params, *s), perturbed))], *s)
                            for s in shards])
        params = [p - worker.LR * d for p, d in zip(params, descent)]
    return params


def sgd_reference(kind):
    x, y = worker.batch()
    params = [p.detach().clone() for p in worker.net(kind).parameters()]
    for _ in range(worker.STEPS):
        params = [p - worker.LR * g for p, g in zip(params, (linear_grads if kind == "SAM" else lsam_grads)(
            params, x, y))]
    return params


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["SAM", "LSAM"])
@pytest.mark.parametrize("mode", ["per_device", "synchronized"])
def test_a_ddp_step_equals_the_hand_reference_of_its_ascent_mode(runs, kind, mode):
    expected = reference(kind, mode)
    for rank in runs["steps"]:
        for got, want in zip(rank[f"{kind} {mode}"]["params"], expected):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # the two modes (and SGD) really differ here, so each comparison tells them apart
    other = reference(kind, "synchronized" if mode == "per_device" else "per_device")
    assert max((a - b).abs().max() for a, b in zip(expected, other)) > 1e-3
    assert max((a - b).abs().max() for a, b in zip(expected, sgd_reference(kind))) > 1e-3


def test_synchronized_equals_one_process_on_the_concatenated_batch(runs):
    x, y = worker.batch()
    model = worker.net("SAM")
    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=worker.RHO, lr=worker.LR)
    for _ in range(worker.STEPS):
        sam_step(optimizer, lambda: F.mse_loss(model(x), y))
    for got, want in zip(runs["steps"][0]["SAM synchronized"]["params"], model.parameters()):
        torch.testing.assert_close(got, want.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["SAM", "LSAM"])
def test_the_descent_is_all_reduced_once_and_the_ascent_only_when_synchronized(runs, kind):
    steps = worker.STEPS  # the tiny models fit in one bucket: one all-reduce per backward
    assert [r[f"{kind} per_device"]["allreduces"] for r in runs["steps"]] == [steps, steps]
    assert [r[f"{kind} synchronized"]["allreduces"] for r in runs["steps"]] == [2 * steps, 2 * steps]


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(runs):
    assert runs["left"]["epoch"] == 1 and runs["left"]["fingerprint"]["run.world_size"] == "2"
    for rank in runs["resumed"]:
        resumed, uninterrupted = rank["resumed"], rank["uninterrupted"]
        assert resumed["history"] == uninterrupted["history"] and len(resumed["history"]) == 3
        for name, value in uninterrupted["state"].items():
            assert torch.equal(resumed["state"][name], value), name
    # every rank holds the same weights (BatchNorm's running statistics are each rank's own until DDP broadcasts
    # rank 0's at the next forward; rank 0's are the ones saved)
    zero, one = (rank["resumed"]["state"] for rank in runs["resumed"])
    weights = [name for name in zero if "running" not in name and "num_batches" not in name]
    assert len(weights) == 6 and all(torch.equal(zero[name], one[name]) for name in weights)


def test_sam_step_closure_and_the_one_pass_lsam_refuse_under_ddp_and_name_sam_step(runs):
    for rank in runs["steps"]:
        assert "sam_step" in rank["refusals"]["SAM.step"] and "per_device" in rank["refusals"]["SAM.step"]
        assert "LSAM.fast_step" in rank["refusals"]["fast_step"] and "two-pass" in rank["refusals"]["fast_step"]


def test_an_overflow_on_one_rank_skips_the_step_on_both_and_backs_both_scalers_off(runs):
    assert [r["overflow"] for r in runs["steps"]] == [{"unchanged": True, "scale": 512.0}] * 2


@pytest.mark.parametrize("mode, message", [
    ("per-device", "ascent_gradient must be one of 'per_device', 'synchronized'; got str 'per-device'"),
    ("per_device", "ascent_gradient='per_device' is for a DistributedDataParallel model, but model is Linear: "
                   "pass model=DistributedDataParallel(net)"),
])
def test_a_bad_ascent_gradient_is_refused_with_the_fix(mode, message):
    model = nn.Linear(3, 1)
    optimizer = SAM(model.parameters(), torch.optim.SGD, lr=0.1, model=model)
    with pytest.raises(ValueError) as info:
        sam_step(optimizer, lambda: model(torch.randn(2, 3)).sum(), ascent_gradient=mode)
    assert message in str(info.value)


def test_sharded_batches_are_seeded_by_the_run_and_the_epoch_not_the_global_generator():
    from samlib.train import ShardedBatches
    data = torch.arange(10)

    def epoch(seed, number):
        batches = ShardedBatches(data, batch_size=4, seed=seed)
        batches.set_epoch(number)
        torch.manual_seed(number + 100)  # the global generator plays no part
        return torch.cat([b for (b,) in batches]).tolist()

    assert sorted(epoch(0, 0)) == list(range(10)) and len(ShardedBatches(data, batch_size=4, seed=0)) == 3
    assert epoch(0, 1) == epoch(0, 1) and epoch(0, 1) != epoch(0, 0) and epoch(1, 0) != epoch(0, 0)
    assert ShardedBatches(data, batch_size=4, seed=3).fingerprint()["data.seed"] == "3"
