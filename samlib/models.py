"""Models split into a feature extractor and a linear head: ``model(x) == model.head(model.features(x))``.

The split is what probes (read ``features``), LSAM (perturbs ``head``) and the phantom
decomposition need. Any backbone fits through :class:`FeaturesAndHead`.
"""
from __future__ import annotations

from torch import Tensor, nn

from . import checks

__all__ = ["FeaturesAndHead", "SmallCNN", "PaperConvNet", "resnet"]


class FeaturesAndHead(nn.Module):
    """A backbone ``features`` (inputs -> (B, D)) followed by a linear ``head`` ((B, D) -> (B, C))."""

    def __init__(self, features: nn.Module, head: nn.Linear):
        super().__init__()
        if not isinstance(head, nn.Linear):
            raise TypeError(f"head must be an nn.Linear, got {type(head).__name__}")
        self.features = features
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _conv_block(cin: int, cout: int, batchnorm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(cout))
    return layers + [nn.ReLU(), nn.MaxPool2d(2)]


class SmallCNN(FeaturesAndHead):
    """Conv blocks (3x3 conv, [BatchNorm], ReLU, 2x2 max-pool), global average pool, linear head.

    Input (B, in_channels, H, W) with H, W divisible by 2**len(widths); features (B, widths[-1]).
    Sized for CPU book-scale runs.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, widths: tuple[int, ...] = (32, 64, 128),
                 batchnorm: bool = False):
        if not widths:
            raise ValueError("widths must name at least one conv block, e.g. (32, 64, 128)")
        checks.positive_int("in_channels", in_channels)
        checks.positive_int("num_classes", num_classes)
        for width in widths:
            checks.positive_int("every width", width, f"widths={widths!r} must hold channel counts, e.g. (32, 64)")
        blocks = [layer for cin, cout in zip((in_channels, *widths), widths)
                  for layer in _conv_block(cin, cout, batchnorm)]
        features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(features, nn.Linear(widths[-1], num_classes))


PAPER_CONV_LAYERS = ((32, 5, 2, 2), (64, 3, 2, 1), (128, 3, 2, 1))  # (out channels, kernel, stride, padding)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class PaperConvNet(FeaturesAndHead):
    """The three-conv network quoted from Springer et al. (2024): Conv(32, k5, s2, p2), ReLU, Conv(64, k3, s2,
    p1), ReLU, Conv(128, k3, s2, p1), ReLU, Flatten, Linear. No BatchNorm, no pooling, so each feature keeps
    its place in the image (a domino's halves stay apart in the features, unlike :class:`SmallCNN`'s global
    average pool).

    Input (B, in_channels, H, W) with ``image_size == (H, W)``; features (B, 128 * ceil(H/8) * ceil(W/8)),
    e.g. 3,584 for a 56x28 domino."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, image_size: tuple[int, int] = (64, 32)):
        checks.positive_int("in_channels", in_channels)
        checks.positive_int("num_classes", num_classes)
        if not (isinstance(image_size, (tuple, list)) and len(image_size) == 2
                and all(isinstance(s, int) and s >= 8 for s in image_size)):
            raise ValueError(f"image_size must be the input's (H, W), both at least 8 pixels, got {image_size!r}")
        layers, cin, (h, w) = [], in_channels, image_size
        for cout, kernel, stride, padding in PAPER_CONV_LAYERS:
            layers += [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding), nn.ReLU()]
            cin, h, w = cout, _conv_out(h, kernel, stride, padding), _conv_out(w, kernel, stride, padding)
        super().__init__(nn.Sequential(*layers, nn.Flatten()), nn.Linear(cin * h * w, num_classes))
        self.image_size = tuple(image_size)


def resnet(depth: int, num_classes: int, *, in_channels: int = 3, pretrained: bool = False,
           small_images: bool = False) -> FeaturesAndHead:
    """torchvision's ResNet-``depth`` (18 or 50) split into features (B, 512 or 2048) and a fresh linear head: the
    paper-scale models (GPU, Colab). ``pretrained``: ImageNet weights (downloaded by torchvision);
    ``small_images``: the CIFAR stem (3x3 stride-1 first conv, no max-pool) for 32-pixel-wide inputs.
    Needs torchvision, imported only here."""
    try:
        import torchvision
    except ImportError:
        raise ImportError("the paper-scale ResNets need torchvision: pip install torchvision (Colab has it), or "
                          "use SmallCNN at book scale") from None
    if depth not in (18, 50):
        raise ValueError(f"depth must be 18 or 50, got {depth!r}")
    weights = "DEFAULT" if pretrained else None
    net = getattr(torchvision.models, f"resnet{depth}")(weights=weights)
    if small_images or in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 3 if small_images else 7, stride=1 if small_images else 2,
                              padding=1 if small_images else 3, bias=False)
    if small_images:
        net.maxpool = nn.Identity()
    head = nn.Linear(net.fc.in_features, num_classes)
    net.fc = nn.Identity()
    return FeaturesAndHead(net, head)
