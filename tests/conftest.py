import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same generator state and the book's thread count."""
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.fixture
def float64():
    """The test runs with float64 as torch's default dtype, which is restored after it. A module whose tests all
    compare with hand computations uses it for every test: ``pytestmark = pytest.mark.usefixtures("float64")``."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)
