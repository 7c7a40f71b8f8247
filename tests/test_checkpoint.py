"""Checkpoints: a resume with any changed field of the fingerprint is refused (lr, rho, optimizer, data, model,
config, seed), more epochs continue the run, resume='force' takes the file as it is, and writes leave no
temporary files and ordinary permissions. The digest: a file with bytes flipped in a weight, in the optimizer
state or in the fingerprint, or truncated, is refused as corrupt (with resume='force' too); a run killed by
SIGKILL mid-write and a full disk still leave the previous checkpoint, which resumes bit-identically."""
import os
import stat

import numpy as np
import pytest
import torch
from torch import nn

from samlib.checkpoint import CheckpointCorrupt, CheckpointMismatch, load_checkpoint, payload_digest, save_atomic
from samlib.experiments.runs import RunSpec, TrainConfig, run_study, train_run
from samlib.models import FeaturesAndHead
from samlib.optim import LSAM, SAM
from samlib.toy.sweep import Run, ToySettings, train_sweep
from samlib.train import TensorBatches, fit

X, Y = torch.randn(16, 3, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 2


def net(hidden=4):
    torch.manual_seed(0)
    return FeaturesAndHead(nn.Sequential(nn.Linear(3, hidden), nn.Tanh()), nn.Linear(hidden, 2))


def optimizer(model, kind="SGD", lr=0.1, rho=0.5):
    if kind == "SGD":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if kind == "SAM":
        return SAM(model.parameters(), torch.optim.SGD, rho=rho, lr=lr, momentum=0.9)
    return LSAM(model.parameters(), torch.optim.SGD, head=model.head, rho=rho, lr=lr, momentum=0.9)


def run(path, epochs=2, kind="SGD", lr=0.1, rho=0.5, data=(X, Y), hidden=4, **kwargs):
    model = net(hidden)
    batches = TensorBatches(*data, batch_size=4)
    return model, fit(model, optimizer(model, kind, lr, rho), batches, epochs=epochs, checkpoint=path,
                      progress=False, **kwargs)


@pytest.mark.parametrize("change, field", [
    (dict(lr=0.5), "optimizer.group0.lr: checkpoint 0.1, now 0.5"),
    (dict(rho=0.1), "optimizer.group1.rho: checkpoint 0.5, now 0.1"),
    (dict(kind="SAM"), "optimizer: checkpoint LSAM(SGD), now SAM(SGD)"),
    (dict(data=(X + 1, Y)), "data: checkpoint"),
    (dict(data=(X[:12], Y[:12])), "data.shapes"),
    (dict(hidden=5), "model.parameters"),
])
def test_a_resume_with_any_changed_field_is_refused_and_names_it(tmp_path, change, field):
    path = tmp_path / "run.pt"
    run(path, kind="LSAM")
    before = path.read_bytes()
    with pytest.raises(CheckpointMismatch) as info:
        run(path, **{"kind": "LSAM", **change})
    assert field in str(info.value) and str(path) in str(info.value) and "resume='force'" in str(info.value)
    assert path.read_bytes() == before  # the refused run wrote nothing


def test_more_epochs_continue_the_run_bit_identically(tmp_path):
    full_model, full = run(None, epochs=4, kind="LSAM")
    run(tmp_path / "run.pt", epochs=2, kind="LSAM")
    model, resumed = run(tmp_path / "run.pt", epochs=4, kind="LSAM")
    assert resumed.rows == full.rows
    assert all(torch.equal(a, b) for a, b in zip(full_model.state_dict().values(), model.state_dict().values()))


def test_force_continues_with_the_settings_the_file_holds(tmp_path):
    path = tmp_path / "run.pt"
    run(path, lr=0.1)
    model, history = run(path, epochs=3, lr=0.5, resume="force")
    assert len(history) == 3
    state = load_checkpoint(path)
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.1  # the file's lr went on
    assert state["fingerprint"]["optimizer.group0.lr"] == "0.1"
    run(path, epochs=4, lr=0.1)  # and a plain resume with the file's settings still matches


def test_an_identity_field_is_part_of_the_fingerprint(tmp_path):
    run(tmp_path / "run.pt", identity={"seed": 0})
    with pytest.raises(CheckpointMismatch, match="run.seed: checkpoint 0, now 1"):
        run(tmp_path / "run.pt", identity={"seed": 1})


def test_train_run_and_run_study_refuse_a_changed_config_or_data(tmp_path):
    config, spec = TrainConfig(epochs=1, batch_size=8), RunSpec("SGD", 0.0, 0)
    train_run(net, X, Y, spec, config, checkpoint=tmp_path / "a.pt", progress=False)
    train_run(net, X, Y, spec, TrainConfig(epochs=2, batch_size=8), checkpoint=tmp_path / "a.pt", progress=False)
    with pytest.raises(CheckpointMismatch, match="run.weight_decay: checkpoint 0.0, now 0.001"):
        train_run(net, X, Y, spec, TrainConfig(epochs=2, batch_size=8, weight_decay=1e-3),
                  checkpoint=tmp_path / "a.pt", progress=False)

    def evaluate(model, spec):
        return {}

    run_study(net, X, Y, [spec], config, evaluate, checkpoint_dir=tmp_path / "study")
    with pytest.raises(CheckpointMismatch, match="data: checkpoint"):
        run_study(net, X * 2, Y, [spec], config, evaluate, checkpoint_dir=tmp_path / "study")


def test_a_toy_sweep_refuses_other_settings_and_force_takes_the_file(tmp_path):
    runs, path = [Run("LSAM", 0.5, 0.5, 0)], tmp_path / "sweep.pt"
    settings = ToySettings(n=20, hidden=4, steps=4)
    train_sweep(runs, settings, checkpoint=path, checkpoint_every=2, progress=False)
    with pytest.raises(CheckpointMismatch, match="settings.lr: checkpoint 0.05, now 0.1"):
        train_sweep(runs, ToySettings(n=20, hidden=4, steps=4, lr=0.1), checkpoint=path, progress=False)
    train_sweep(runs, ToySettings(n=20, hidden=4, steps=4, lr=0.1), checkpoint=path, resume="force", progress=False)


def test_a_killed_write_leaves_no_temporary_file_after_the_next_save(tmp_path):
    path = tmp_path / "run.pt"
    stale = tmp_path / ".run.pt.abc123.tmp"  # what a kill -9 during torch.save leaves behind
    stale.write_bytes(b"half a checkpoint")
    save_atomic({"x": 1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def test_checkpoints_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_atomic({"x": 1}, tmp_path / "run.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# --- the digest: a checkpoint whose bytes changed is refused, however they changed ----------------------------


def _flip(path, original: bytes, replacement: bytes | None = None):
    """Change the first occurrence of ``original`` in the file at ``path``: its first byte XOR 0xFF, or the whole
    of it replaced by ``replacement`` (same length)."""
    blob = bytearray(path.read_bytes())
    at = blob.find(original)
    assert at >= 0 and blob.find(original, at + 1) < 0, "the bytes to change must occur exactly once"
    if replacement is None:
        blob[at] ^= 0xFF
    else:
        assert len(replacement) == len(original)
        blob[at:at + len(original)] = replacement
    path.write_bytes(bytes(blob))


def _corrupted(tmp_path, where):
    """A two-epoch LSAM run's checkpoint with a few bytes changed ``where``; returns its path."""
    path = tmp_path / "run.pt"
    model, _ = run(path, kind="LSAM")
    state = load_checkpoint(path)
    if where == "weight":
        _flip(path, state["model"]["features.0.weight"].numpy().tobytes())
    elif where == "optimizer state":
        _flip(path, state["optimizer"]["state"][0]["momentum_buffer"].numpy().tobytes())
    elif where == "fingerprint":
        digest = state["fingerprint"]["data"].encode()
        _flip(path, digest, digest[:-1] + (b"0" if digest[-1:] != b"0" else b"1"))
    else:  # truncated: the first half of the file only
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    return path


@pytest.mark.parametrize("where", ["weight", "optimizer state", "fingerprint", "truncated"])
@pytest.mark.parametrize("resume", ["check", "force"])
def test_a_checkpoint_with_changed_bytes_is_refused_as_corrupt(tmp_path, where, resume):
    path = _corrupted(tmp_path, where)
    with pytest.raises(CheckpointCorrupt) as info:
        run(path, epochs=3, kind="LSAM", resume=resume)
    assert str(path) in str(info.value) and "move it away" in str(info.value)
    with pytest.raises(CheckpointCorrupt):
        load_checkpoint(path)


def test_the_digest_message_says_what_happened_and_what_to_do(tmp_path):
    path = _corrupted(tmp_path, "weight")
    with pytest.raises(CheckpointCorrupt, match="do not match the digest written with them.*restore the file from a "
                                                "copy, or move it away"):
        load_checkpoint(path)


def test_a_toy_sweep_checkpoint_with_a_flipped_parameter_is_refused(tmp_path):
    runs, path = [Run("LSAM", 0.5, 0.5, 0)], tmp_path / "sweep.pt"
    settings = ToySettings(n=20, hidden=4, steps=4)
    train_sweep(runs, settings, checkpoint=path, checkpoint_every=2, progress=False)
    _flip(path, load_checkpoint(path)["params"]["hard.w2"].numpy().tobytes())
    with pytest.raises(CheckpointCorrupt, match="do not match the digest"):
        train_sweep(runs, settings, checkpoint=path, progress=False)


def test_the_digest_covers_every_value_and_equal_contents_give_equal_digests():
    state = {"epoch": 2, "model": {"w": torch.arange(6.0).reshape(2, 3)}, "history": [{"loss": 0.5}], "rng": (1, 2)}
    same = {"epoch": np.int64(2), "model": {"w": torch.arange(6.0).reshape(2, 3).clone()},
            "history": [{"loss": np.float64(0.5)}], "rng": (1, 2)}
    assert payload_digest(state) == payload_digest(same)
    changed = [{**state, "epoch": 3}, {**state, "model": {"w": torch.arange(6.0).reshape(3, 2)}},
               {**state, "model": {"w": torch.arange(6.0, dtype=torch.float64).reshape(2, 3)}},
               {**state, "history": [{"loss": 0.5000001}]}, {**state, "rng": [1, 2]}, {**state, "epoch": "2"}]
    assert len({payload_digest(s) for s in changed} | {payload_digest(state)}) == len(changed) + 1
    with pytest.raises(TypeError, match="not function"):
        payload_digest({"f": lambda: None})


def test_a_file_marked_with_the_current_format_but_without_its_digest_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    run(path)
    state = load_checkpoint(path)  # the digest checked and removed
    torch.save(state, path)  # rewritten by hand: no digest
    with pytest.raises(CheckpointCorrupt, match="lacks the digest"):
        run(path, epochs=3, resume="force")


# --- kill -9 and a full disk: unchanged by the digest ----------------------------------------------------------

_SCRIPT = """
import os, signal, sys
import torch
from torch import nn
import samlib.checkpoint
from samlib.models import FeaturesAndHead
from samlib.optim import SAM
from samlib.repro import configure
from samlib.train import TensorBatches, fit

mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
configure(seed=4, threads=1)
x = torch.randn(24, 3)
y = (x[:, 0] > 0).long()
torch.manual_seed(1)
model = FeaturesAndHead(nn.Sequential(nn.Linear(3, 8), nn.Tanh()), nn.Linear(8, 2))
opt = SAM(model.parameters(), torch.optim.SGD, rho=0.3, lr=0.2, momentum=0.9, model=model)
if mode == "killed":  # killed by SIGKILL in the middle of writing epoch 3's checkpoint
    saves, real_save = [], torch.save
    def dying_save(obj, f):
        saves.append(1)
        if len(saves) == 3:
            f.write(b"PK half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real_save(obj, f)
    samlib.checkpoint.torch.save = dying_save
fit(model, opt, TensorBatches(x, y, batch_size=8), epochs=5, progress=False,
    checkpoint=None if mode == "straight" else path)
torch.save(model.state_dict(), out)
"""


def _script(tmp_path, mode, checkpoint):
    import subprocess
    import sys
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    out = tmp_path / f"{mode}.weights"
    done = subprocess.run([sys.executable, str(script), mode, str(checkpoint), str(out)], capture_output=True,
                          text=True, timeout=300)
    return done, out


def test_a_run_killed_mid_write_resumes_bit_identically_and_the_digest_checks_the_file_it_left(tmp_path):
    path = tmp_path / "run.pt"
    straight, straight_out = _script(tmp_path, "straight", path)
    assert straight.returncode == 0, straight.stderr
    killed, _ = _script(tmp_path, "killed", path)
    assert killed.returncode == -9, killed.stderr
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".run.pt."))
    assert len(left) == 1  # the half-written temporary file; run.pt itself is epoch 2's, intact
    assert load_checkpoint(path)["epoch"] == 2  # its digest matches
    resumed, resumed_out = _script(tmp_path, "resumed", path)
    assert resumed.returncode == 0, resumed.stderr
    a, b = torch.load(straight_out), torch.load(resumed_out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(path)["epoch"] == 5 and not any(p.name.startswith(".run.pt.") for p in tmp_path.iterdir())


def test_a_full_disk_keeps_the_previous_checkpoint_intact_and_resumable(tmp_path, monkeypatch):
    import errno

    import samlib.checkpoint as checkpoint_module

    path = tmp_path / "run.pt"
    straight_model, straight = run(None, epochs=3, kind="SAM")
    real_save, calls = torch.save, []

    def full_disk(obj, f):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"PK partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run(path, epochs=3, kind="SAM")
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]
    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint, its digest intact
    model, resumed = run(path, epochs=3, kind="SAM")
    assert resumed.rows == straight.rows
    assert all(torch.equal(a, b) for a, b in zip(straight_model.state_dict().values(), model.state_dict().values()))
