"""Step cost of SAM and LSAM relative to SGD, measured side by side in one run.

    python benchmarks/step_cost.py                 # CPU defaults: batch 128, 3x32x32, SmallCNN
    python benchmarks/step_cost.py --device cuda   # on a GPU

Each round times one step of every method in turn (interleaved, so drifts in machine
load hit all of them alike) on the same batch and equal models; the table shows each
method's median step time and the median over rounds of its time / SGD's time. Floors: SAM 2.0x (two passes), fast
LSAM and its two ablations (IW-only, LR-only: ``AblatedLSAM``) about 1.0x (one backbone pass plus head work).
Informational: nothing asserts on time.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from samlib.models import SmallCNN
from samlib.optim import LSAM, SAM, AblatedLSAM, lsam_param_groups
from samlib.train import train_step

TARGETS = {"SAM": 2.05, "fast LSAM": 1.15, "IW-only": 1.15, "LR-only": 1.15}


def make_optimizers(model: torch.nn.Module, rho: float) -> dict:
    """One (model, optimizer) pair per method, all from the same initial weights."""
    def fresh():
        return copy.deepcopy(model)
    sgd_m, sam_m, gen_m, fast_m, iw_m, lr_m = (fresh() for _ in range(6))
    kw = dict(lr=0.01, momentum=0.9)
    return {
        "SGD": (sgd_m, torch.optim.SGD(sgd_m.parameters(), **kw)),
        "SAM": (sam_m, SAM(sam_m.parameters(), torch.optim.SGD, rho=rho, model=sam_m, **kw)),
        "generic LSAM": (gen_m, SAM(lsam_param_groups(gen_m.parameters(), gen_m.head), torch.optim.SGD,
                                    rho=rho, model=gen_m, **kw)),
        "fast LSAM": (fast_m, LSAM(fast_m.parameters(), torch.optim.SGD, head=fast_m.head, rho=rho, **kw)),
        "IW-only": (iw_m, AblatedLSAM(iw_m.parameters(), torch.optim.SGD, head=iw_m.head, rho=rho,
                                      effect="importance_weighting", **kw)),
        "LR-only": (lr_m, AblatedLSAM(lr_m.parameters(), torch.optim.SGD, head=lr_m.head, rho=rho,
                                      effect="lr_scaling", **kw)),
    }


def time_steps(runs: dict, x, y, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per step for each method, interleaved round by round."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(warmup + rounds):
        for name, (model, opt) in runs.items():
            sync()
            start = time.perf_counter()
            train_step(model, opt, F.cross_entropy, x, y)
            sync()
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def main(argv=None) -> list[tuple[str, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rho", type=float, default=0.05)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = SmallCNN(3, 10, tuple(args.widths), batchnorm=True).to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    times = time_steps(make_optimizers(model, args.rho), x, y, args.rounds, args.warmup)

    sgd = times["SGD"]
    rows = [(name, statistics.median(t) * 1e3, statistics.median(a / b for a, b in zip(t, sgd)))
            for name, t in times.items()]
    print(f"SmallCNN{tuple(args.widths)}, batch {args.batch} x 3x{args.size}x{args.size}, {args.device}, "
          f"{args.threads} threads, median of {args.rounds} interleaved rounds")
    print(f"{'method':<14}{'ms/step':>10}{'x SGD':>9}{'target':>9}")
    for name, ms, ratio in rows:
        target = f"<= {TARGETS[name]:.2f}" if name in TARGETS else ""
        print(f"{name:<14}{ms:>10.1f}{ratio:>9.2f}{target:>9}")
    return rows


if __name__ == "__main__":
    main()
