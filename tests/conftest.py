import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same generator state and the book's thread count."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
