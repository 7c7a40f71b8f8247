"""Models split into a feature extractor and a linear head: ``model(x) == model.head(model.features(x))``.

The split is what probes (read ``features``), LSAM (perturbs ``head``) and the phantom
decomposition need. Any backbone fits through :class:`FeaturesAndHead`.
"""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["FeaturesAndHead", "SmallCNN", "resnet"]


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
        blocks = [layer for cin, cout in zip((in_channels, *widths), widths)
                  for layer in _conv_block(cin, cout, batchnorm)]
        features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(features, nn.Linear(widths[-1], num_classes))


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
