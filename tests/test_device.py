"""The batched trainers on a device: ``device=None`` is :func:`samlib.scale.device` (the CPU at book scale),
an explicit CPU gives the very same numbers, results and checkpoints come back on the CPU, and a GPU (where
there is one) agrees with the CPU."""
import math

import pandas as pd
import pytest
import torch

from samlib import scale
from samlib.checkpoint import load_checkpoint
from samlib.memorization.data import DataSetting, grid_runs
from samlib.memorization.train import Training, train_runs, train_table
from samlib.toy.sweep import ToySettings, grid, train_sweep

TINY = ToySettings(n=40, hidden=4, steps=12, batch_size=10, log_every=3)
SWEEPS = {  # the three code paths of a step: head only, SAM's two passes, the recombined ablations
    "head": grid({"SGD": [0.0], "LSAM": [0.5]}, [0.5], [0, 1]),
    "sam": grid({"SAM": [0.05]}, [0.75], [0, 1]),
    "ablations": grid({"SGD": [0.0], "IW-only": [1.0], "LR-only": [1.0]}, [0.75], [0]),
}
PATCHES = DataSetting(d=40, sigma_p=1.0, p=0.2, n_test=200)
PATCH_RUNS = grid_runs([6, 12], [1.0, 4.0], [0], taus=[0.0, 0.5])
TRAINING = Training(width=4, batch_size=4, max_epochs=6, stop_loss=0.3, log_every=1, eval_every=2)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here: the CPU paths are checked above")


def _same(a, b) -> bool:
    """Bit-identical, NaN in the same places (the memorization trace pads with NaN)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not a.is_floating_point():
        return torch.equal(a, b)
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def _sweep_tensors(result) -> dict:
    tensors = {f"params.{k}": p for k, p in result.params.items()}
    tensors.update({f"history.{k}": h for k, h in result.history.items()})
    tensors.update({f"snapshot{s}.{k}": p for s, ps in result.snapshots.items() for k, p in ps.items()})
    return tensors


def _result_tensors(result) -> dict:
    names = ("weights", "epochs", "stopped", "train_loss", "train_error", "test_error", "labels", "valid")
    tensors = {name: getattr(result, name) for name in names}
    tensors.update({f"trace.{k}": getattr(result.trace, k) for k in ("loss", "signal", "noise", "noise_active",
                                                                      "test_error")})
    return tensors


@pytest.fixture
def spy_device(monkeypatch):
    """samlib.scale.device, counting its calls."""
    calls = []
    real = scale.device
    monkeypatch.setattr(scale, "device", lambda: calls.append(1) or real())
    return calls


@pytest.mark.parametrize("path", list(SWEEPS))
def test_a_sweep_on_the_cpu_is_the_default_sweep_and_comes_back_on_the_cpu(path, spy_device, tmp_path):
    default = train_sweep(SWEEPS[path], TINY, snapshots=(5,), progress=False)
    assert spy_device == [1]  # None asked samlib.scale.device
    cpu = train_sweep(SWEEPS[path], TINY, snapshots=(5,), progress=False, device="cpu",
                      checkpoint=tmp_path / "sweep.pt", checkpoint_every=5)
    a, b = _sweep_tensors(default), _sweep_tensors(cpu)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(t.device.type == "cpu" for t in a.values())
    state = load_checkpoint(tmp_path / "sweep.pt")
    assert all(t.device.type == "cpu" for part in ("params", "buffers") for t in state[part].values())


def test_memorization_runs_on_the_cpu_are_the_default_runs_and_come_back_on_the_cpu(spy_device):
    default = train_runs(PATCH_RUNS, PATCHES, TRAINING, progress=False)
    assert spy_device == [1]
    cpu = train_runs(PATCH_RUNS, PATCHES, TRAINING, progress=False, device=torch.device("cpu"))
    assert 0 < int(cpu.stopped.sum()) < len(PATCH_RUNS)  # the stopping rule froze some runs early
    a, b = _result_tensors(default), _result_tensors(cpu)
    assert all(_same(a[k], b[k]) for k in a), [k for k in a if not _same(a[k], b[k])]
    assert all(t.device.type == "cpu" for t in a.values())
    table, _ = train_table(PATCH_RUNS, PATCHES, TRAINING, progress=False, device="cpu")
    pd.testing.assert_frame_equal(table, default.table())


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the paper scale trains there")
def test_at_paper_scale_without_a_gpu_the_default_is_still_the_cpu():
    scale.set_scale("paper")
    try:
        paper = train_sweep(SWEEPS["head"], TINY, progress=False)
    finally:
        scale.set_scale(None)
    cpu = train_sweep(SWEEPS["head"], TINY, progress=False, device="cpu")
    assert all(torch.equal(paper.params[k], cpu.params[k]) for k in cpu.params)


@CUDA
@pytest.mark.parametrize("path", list(SWEEPS))
def test_a_sweep_on_the_gpu_agrees_with_the_cpu(path):
    cpu = _sweep_tensors(train_sweep(SWEEPS[path], TINY, snapshots=(5,), progress=False, device="cpu"))
    gpu = _sweep_tensors(train_sweep(SWEEPS[path], TINY, snapshots=(5,), progress=False, device="cuda"))
    assert cpu.keys() == gpu.keys() and all(t.device.type == "cpu" for t in gpu.values())
    for k in cpu:
        torch.testing.assert_close(gpu[k], cpu[k], rtol=1e-4, atol=1e-5, msg=k)


@CUDA
def test_memorization_runs_on_the_gpu_agree_with_the_cpu():
    cpu = _result_tensors(train_runs(PATCH_RUNS, PATCHES, TRAINING, progress=False, device="cpu"))
    gpu = _result_tensors(train_runs(PATCH_RUNS, PATCHES, TRAINING, progress=False, device="cuda"))
    assert all(t.device.type == "cpu" for t in gpu.values())
    for k in cpu:
        if cpu[k].is_floating_point():
            torch.testing.assert_close(gpu[k], cpu[k], rtol=1e-4, atol=1e-5, equal_nan=True, msg=k)
        else:
            assert torch.equal(gpu[k], cpu[k]), k
    assert not math.isnan(float(gpu["trace.test_error"][-1].mean()))
