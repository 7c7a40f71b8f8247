"""One process of tests/test_distributed.py, started by ``torchrun --nproc-per-node 2`` on the CPU (gloo).

    torchrun --nproc-per-node 2 tests/distributed_worker.py steps OUT     # SAM/LSAM steps, refusals, AMP skip
    torchrun --nproc-per-node 2 tests/distributed_worker.py killed OUT    # train_run, killed during epoch 2
    torchrun --nproc-per-node 2 tests/distributed_worker.py resumed OUT   # the same run resumed, and uninterrupted

Each rank saves what it saw to OUT/<phase>-rank<r>.pt; the test compares it with single-process references.
"""
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

from samlib.experiments.runs import RunSpec, TrainConfig, train_run
from samlib.models import FeaturesAndHead
from samlib.optim import LSAM, SAM, backward, sam_step

STEPS, RHO, LR = 2, 0.3, 0.1
WORLD_BATCH = 8


def batch():
    """The batch of all processes, (8, 3) inputs and (8, 1) targets; rank r holds rows 4r to 4r + 3."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(WORLD_BATCH, 3, generator=g, dtype=torch.float64)
    y = torch.randn(WORLD_BATCH, 1, generator=g, dtype=torch.float64) + 3 * x[:, :1]  # shards far apart
    y[WORLD_BATCH // 2:] *= -2
    return x, y


def net(kind):
    torch.manual_seed(1)
    if kind == "SAM":
        return nn.Linear(3, 1).double()
    return FeaturesAndHead(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), nn.Linear(4, 1)).double()


def shard(t):
    rank, n = dist.get_rank(), dist.get_world_size()
    size = len(t) // n
    return t[rank * size:(rank + 1) * size]


def counted_ddp(model):
    """``model`` in DDP with a communication hook that counts the buckets it all-reduces."""
    ddp = nn.parallel.DistributedDataParallel(model)
    calls = [0]

    def hook(state, bucket):
        calls[0] += 1
        return allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, hook)
    return ddp, calls


def make_optimizer(kind, ddp):
    if kind == "SAM":
        return SAM(ddp.parameters(), torch.optim.SGD, rho=RHO, lr=LR, model=ddp)
    return LSAM(ddp.parameters(), torch.optim.SGD, head=ddp.module.head, rho=RHO, lr=LR, model=ddp)


def ddp_steps(kind, mode):
    x, y = (shard(t) for t in batch())
    ddp, calls = counted_ddp(net(kind))
    optimizer = make_optimizer(kind, ddp)
    for _ in range(STEPS):
        sam_step(optimizer, lambda: F.mse_loss(ddp(x), y), ascent_gradient=mode)
    return {"params": [p.detach().clone() for p in ddp.parameters()], "allreduces": calls[0]}


def refusals():
    """The messages of the calls that must refuse under DDP."""
    x, y = (shard(t) for t in batch())
    messages = {}
    ddp = nn.parallel.DistributedDataParallel(net("SAM"))
    try:
        SAM(ddp.parameters(), torch.optim.SGD, lr=LR, model=ddp).step(lambda: backward(F.mse_loss(ddp(x), y)))
    except RuntimeError as error:
        messages["SAM.step"] = str(error)
    model = net("LSAM")
    try:
        LSAM(model.parameters(), torch.optim.SGD, head=model.head, lr=LR).fast_step(model.features(x),
                                                                                 lambda out: F.mse_loss(out, y))
    except RuntimeError as error:
        messages["fast_step"] = str(error)
    return messages


def overflow_on_rank_one():
    """A per-device step with a GradScaler where only rank 1's ascent gradient overflows."""
    x, y = (shard(t) for t in batch())
    ddp = nn.parallel.DistributedDataParallel(net("SAM"))
    before = [p.detach().clone() for p in ddp.parameters()]
    optimizer = SAM(ddp.parameters(), torch.optim.SGD, rho=RHO, lr=LR, model=ddp)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    blowup = float("inf") if dist.get_rank() == 1 else 1.0
    sam_step(optimizer, lambda: F.mse_loss(ddp(x), y) * blowup, scaler=scaler)
    unchanged = all(torch.equal(b, p) for b, p in zip(before, ddp.parameters()))
    return {"unchanged": unchanged, "scale": scaler.get_scale()}


def images_and_labels():
    g = torch.Generator().manual_seed(2)
    return torch.randn(24, 3, generator=g), torch.arange(24) % 2


def small_net():
    return FeaturesAndHead(nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Tanh()), nn.Linear(8, 2))


def trained(epochs, checkpoint=None, kill_in_epoch=None):
    def maybe_die(model):
        if len(model_epochs) + 1 == kill_in_epoch:
            os._exit(3)  # no clean-up at all, as a killed process
        model_epochs.append(1)
        return {}

    model_epochs = []
    images, labels = images_and_labels()
    model, history = train_run(small_net, images, labels, RunSpec("SAM", 0.2, seed=4),
                               TrainConfig(epochs=epochs, lr=0.1, batch_size=8), checkpoint=checkpoint,
                               progress=False, evaluate_each_epoch=maybe_die)
    return {"state": model.state_dict(), "history": history.rows}


def main(phase, out):
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    checkpoint = os.path.join(out, "run.pt")
    if phase == "steps":
        result = {f"{kind} {mode}": ddp_steps(kind, mode) for kind in ("SAM", "LSAM")
                  for mode in ("per_device", "synchronized")}
        result["refusals"] = refusals()
        result["overflow"] = overflow_on_rank_one()
    elif phase == "killed":
        trained(3, checkpoint, kill_in_epoch=2)
        result = {}
    else:
        result = {"resumed": trained(3, checkpoint), "uninterrupted": trained(3)}
    torch.save(result, os.path.join(out, f"{phase}-rank{dist.get_rank()}.pt"))
    # Both ranks leave together: under heavy load one rank tearing the group down while the other still finished
    # its last collective once aborted ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
