"""Checkpoints: a resume with any changed field of the fingerprint is refused (lr, rho, optimizer, data, model,
config, seed), more epochs continue the run, resume='force' takes the file as it is, and writes leave no
temporary files and ordinary permissions."""
import os
import stat

import pytest
import torch
from torch import nn

from samlib.checkpoint import CheckpointMismatch, load_checkpoint, save_atomic
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
