"""Cost of a SAM step with 2 gloo processes (DDP) against 1 process, measured side by side in one run; and, where
a GPU exists, SAM and SGD steps under mixed precision (float16 autocast + GradScaler) against float32.

    python benchmarks/distributed_step_cost.py            # starts torchrun --nproc-per-node 2 itself
    python benchmarks/distributed_step_cost.py --batch 256 --rounds 50

Each round times, in turn, one step of every method on the same global batch: on rank 0 alone (the other rank
waits at a barrier) a single-process SGD and SAM step on the whole batch, then SGD and SAM (both ascent
gradients) with DDP, each process on half the batch. The table shows median ms/step and the median over
rounds of time / (single-process SAM). On a machine with as many free cores as processes the DDP rows fall
below 1.0; on a loaded 2-core machine they show the communication's cost. Nothing asserts on time.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from samlib.models import SmallCNN
from samlib.optim import SAM, sam_step
from samlib.train import train_step

METHODS = ("SGD, 1 process", "SAM, 1 process", "SGD, DDP", "SAM, DDP per_device", "SAM, DDP synchronized")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="the global batch (each DDP process takes half)")
    parser.add_argument("--size", type=int, default=16, help="image height and width")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the result file, in a torchrun process
    return parser.parse_args(argv)


def sam_of(model):
    return SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.01, momentum=0.9, model=model)


def sgd_of(model):
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def single_process_steps(model, x, y):
    """rank 0's single-process SGD and SAM steps on the whole batch."""
    sgd_model, sam_model = copy.deepcopy(model), copy.deepcopy(model)
    sgd, sam = sgd_of(sgd_model), sam_of(sam_model)
    return {"SGD, 1 process": lambda: train_step(sgd_model, sgd, F.cross_entropy, x, y),
            "SAM, 1 process": lambda: train_step(sam_model, sam, F.cross_entropy, x, y)}


def ddp_steps(model, x, y):
    """This rank's DDP SGD and SAM steps on its half of the batch."""
    half = len(x) // torch.distributed.get_world_size()
    rank = torch.distributed.get_rank()
    xs, ys = x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]
    steps = {}
    for name in METHODS[2:]:
        ddp = torch.nn.parallel.DistributedDataParallel(copy.deepcopy(model))
        if name == "SGD, DDP":
            steps[name] = (lambda d, o: lambda: train_step(d, o, F.cross_entropy, xs, ys))(ddp, sgd_of(ddp))
        else:
            mode = name.split()[-1]
            steps[name] = (lambda d, o, m: lambda: sam_step(o, lambda: F.cross_entropy(d(xs), ys),
                                                            ascent_gradient=m))(ddp, sam_of(ddp), mode)
    return steps


def worker(args) -> None:
    torch.distributed.init_process_group("gloo")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SmallCNN(3, 10, tuple(args.widths), batchnorm=True)
    x, y = torch.randn(args.batch, 3, args.size, args.size), torch.randint(0, 10, (args.batch,))
    rank = torch.distributed.get_rank()
    single = single_process_steps(model, x, y) if rank == 0 else {}
    distributed = ddp_steps(model, x, y)
    times = {name: [] for name in METHODS}
    for r in range(args.warmup + args.rounds):
        for name in METHODS:
            torch.distributed.barrier()
            if name in distributed or rank == 0:
                seconds = timed((single | distributed)[name])
                if r >= args.warmup:
                    times[name].append(seconds)
    if rank == 0:
        torch.save(times, args.worker)
    torch.distributed.destroy_process_group()


def ddp_rows(args) -> list[tuple[str, float, float]]:
    """(method, median ms/step, median time / single-process SAM) from one torchrun of 2 gloo processes."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "times.pt"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   __file__, "--worker", str(out), "--batch", str(args.batch), "--size", str(args.size),
                   "--rounds", str(args.rounds), "--warmup", str(args.warmup), "--widths", *map(str, args.widths)]
        subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True)
        return ratio_rows(torch.load(out), "SAM, 1 process")


def amp_rows(args) -> list[tuple[str, float, float]] | None:
    """SGD and SAM steps in float32 and under float16 autocast + GradScaler on the GPU, as (method, ms/step,
    time / float32 SGD); ``None`` without a GPU."""
    if not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    model = SmallCNN(3, 10, tuple(args.widths), batchnorm=True).cuda()
    x = torch.randn(args.batch, 3, args.size, args.size, device="cuda")
    y = torch.randint(0, 10, (args.batch,), device="cuda")
    runs = {}
    for name, make, amp in [("SGD fp32", sgd_of, False), ("SAM fp32", sam_of, False),
                            ("SGD amp", sgd_of, True), ("SAM amp", sam_of, True)]:
        m = copy.deepcopy(model)
        options = {"autocast_dtype": torch.float16, "scaler": torch.amp.GradScaler("cuda")} if amp else {}
        runs[name] = (lambda m, o, kw: lambda: train_step(m, o, F.cross_entropy, x, y, **kw))(m, make(m), options)
    times = {name: [] for name in runs}
    for r in range(args.warmup + args.rounds):
        for name, step in runs.items():
            torch.cuda.synchronize()
            seconds = timed(lambda: (step(), torch.cuda.synchronize()))
            if r >= args.warmup:
                times[name].append(seconds)
    return ratio_rows(times, "SGD fp32")


def ratio_rows(times: dict[str, list[float]], base: str) -> list[tuple[str, float, float]]:
    """(method, median ms/step, median over rounds of time / ``base``'s time) for each method."""
    return [(name, statistics.median(t) * 1e3, statistics.median(a / b for a, b in zip(t, times[base])))
            for name, t in times.items()]


def show(title: str, rows, against: str) -> None:
    print(title)
    print(f"{'method':<24}{'ms/step':>10}{'x ' + against:>22}")
    for name, ms, ratio in rows:
        print(f"{name:<24}{ms:>10.1f}{ratio:>22.2f}")


def main(argv=None) -> dict:
    args = parse(argv)
    if args.worker:
        return worker(args)
    rows = ddp_rows(args)
    show(f"SmallCNN{tuple(args.widths)}, global batch {args.batch} x 3x{args.size}x{args.size}, CPU, gloo, "
         f"1 thread a process, median of {args.rounds} interleaved rounds", rows, "SAM, 1 process")
    amp = amp_rows(args)
    if amp is None:
        print("no GPU here: the mixed-precision (float16 autocast + GradScaler) step cost is skipped")
    else:
        show("GPU, float16 autocast + GradScaler", amp, "SGD fp32")
    return {"ddp": rows, "amp": amp}


if __name__ == "__main__":
    main()
