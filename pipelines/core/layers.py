"""Small network building blocks that several systems' models are made of."""

from __future__ import annotations

from torch import nn


def conv_block(
    in_channels: int, out_channels: int, stride: int = 1, activation: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
    """3x3 convolution, group norm (4 groups: batch-size independent, so training batches of 1-8 and
    single-frame inference normalise alike) and an activation. Saved weights are named `0.*` and `1.*`."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.GroupNorm(4, out_channels), activation()
    )
