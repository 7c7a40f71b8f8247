"""Values glued into the prose are plain, rounded Python numbers."""
import numpy as np
import torch

from samlib.book import plain_number


def test_plain_number_unwraps_and_rounds_numpy_and_torch_scalars():
    assert repr(plain_number(np.float64(2.5261), 2)) == "2.53"
    assert repr(plain_number(torch.tensor(0.123456, dtype=torch.float64), 3)) == "0.123"
    assert repr(plain_number(np.int64(7))) == "7"
    assert plain_number("text") == "text"
