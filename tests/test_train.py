"""Training loop: optimizer dispatch, determinism, checkpoint-and-resume, atomic writes."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F

from samlib.checkpoint import CheckpointError, load_checkpoint, save_atomic, write_text_atomic
from samlib.models import SmallCNN
from samlib.optim import LSAM, SAM
from samlib.repro import configure
from samlib.train import TensorBatches, fit, progress_bar, train_step


def toy_images(n=48):
    x = torch.randn(n, 1, 8, 8)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long()
    return x, y


def make_run(kind):
    model = SmallCNN(in_channels=1, num_classes=2, widths=(4, 8), batchnorm=True)
    kwargs = dict(lr=0.05, momentum=0.9)
    if kind == "sgd":
        return model, torch.optim.SGD(model.parameters(), **kwargs)
    if kind == "sam":
        return model, SAM(model.parameters(), torch.optim.SGD, rho=0.05, model=model, **kwargs)
    return model, LSAM(model.parameters(), torch.optim.SGD, head=model.head, rho=0.1, **kwargs)


@pytest.mark.parametrize("kind", ["sgd", "sam", "lsam"])
def test_fit_is_deterministic_and_learns(kind):
    results = []
    for _ in range(2):
        configure(seed=3)
        x, y = toy_images()
        model, opt = make_run(kind)
        history = fit(model, opt, TensorBatches(x, y, batch_size=16), epochs=6, progress=False,
                      evaluate=lambda m: {"acc": (m(x).argmax(1) == y).float().mean().item()})
        results.append((model.state_dict(), history.rows))
    for a, b in zip(results[0][0].values(), results[1][0].values()):
        assert torch.equal(a, b)
    assert results[0][1] == results[1][1]
    rows = results[0][1]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert set(rows[-1]) == {"epoch", "train_loss", "train_acc", "acc"}


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    def run(epochs, checkpoint):
        configure(seed=5)
        x, y = toy_images()
        model, opt = make_run("sam")
        return model, fit(model, opt, TensorBatches(x, y, batch_size=16), epochs=epochs,
                          checkpoint=checkpoint, progress=False)

    straight, straight_history = run(4, None)
    ckpt = tmp_path / "run.pt"
    run(2, ckpt)                      # "crashes" after epoch 2
    configure(seed=5)                 # the rerun script rebuilds the same data and model...
    x, y = toy_images()
    model, opt = make_run("sam")
    torch.rand(1000)                  # ...but reaches fit() with another generator state
    resumed_history = fit(model, opt, TensorBatches(x, y, batch_size=16), epochs=4, checkpoint=ckpt, progress=False)
    for a, b in zip(straight.state_dict().values(), model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed_history.rows == straight_history.rows
    assert load_checkpoint(ckpt)["epoch"] == 4


def test_checkpoint_past_the_requested_epochs_is_refused(tmp_path):
    x, y = toy_images()
    model, opt = make_run("sgd")
    fit(model, opt, TensorBatches(x, y, batch_size=16), epochs=2, checkpoint=tmp_path / "c.pt", progress=False)
    with pytest.raises(ValueError, match="is at epoch 2, past epochs=1"):
        fit(model, opt, TensorBatches(x, y, batch_size=16), epochs=1, checkpoint=tmp_path / "c.pt", progress=False)


def test_progress_bars_follow_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv("SAMLIB_PROGRESS", "0")
    assert progress_bar(range(3)).disable
    assert not progress_bar(range(3), progress=True).disable
    monkeypatch.delenv("SAMLIB_PROGRESS")
    assert not progress_bar(range(3)).disable


def test_corrupt_checkpoint_gets_a_clear_error(tmp_path):
    bad = tmp_path / "run.pt"
    bad.write_bytes(b"not a checkpoint")
    model, opt = make_run("sgd")
    x, y = toy_images()
    with pytest.raises(CheckpointError, match="is corrupt or not a samlib checkpoint.*move it away"):
        fit(model, opt, TensorBatches(x, y, batch_size=16), epochs=1, checkpoint=bad, progress=False)


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_atomic({"epoch": 1}, path)
    with pytest.raises(Exception):
        save_atomic({"bad": lambda: None}, path)  # lambdas cannot be pickled
    assert load_checkpoint(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_text_is_written_atomically(tmp_path):
    path = tmp_path / "table.csv"
    write_text_atomic("a,b\n1,2\n", path)
    assert path.read_text() == "a,b\n1,2\n"
    with pytest.raises(AttributeError):
        write_text_atomic(None, path)  # fails before anything is written
    assert path.read_text() == "a,b\n1,2\n" and os.listdir(tmp_path) == ["table.csv"]


def test_train_step_uses_the_fast_lsam_path_and_returns_real_outputs():
    x, y = toy_images(12)
    model, opt = make_run("lsam")
    before = copy.deepcopy(model)                      # train mode, the real weights
    expected_outputs = before.head(before.features(x))
    calls = []
    original = model.forward
    model.forward = lambda inp: calls.append(1) or original(inp)
    loss, outputs = train_step(model, opt, F.cross_entropy, x, y)
    assert calls == []                                 # the two-pass path (model.forward) was not used
    torch.testing.assert_close(outputs, expected_outputs.detach())
    torch.testing.assert_close(loss, F.cross_entropy(expected_outputs, y).detach())


def test_tensor_batches_cover_every_example_once_and_check_input():
    batches = TensorBatches(torch.arange(10), torch.arange(10), batch_size=4)
    seen = torch.cat([b[0] for b in batches])
    assert len(batches) == 3 and sorted(seen.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="same first dimension"):
        TensorBatches(torch.zeros(3), torch.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TensorBatches(torch.zeros(3), batch_size=0)
