"""Keeping the WGAN critic Lipschitz: singular value clipping (TGAN) and weight clipping (WGAN).

The Wasserstein loss needs a 1-Lipschitz critic. Plain WGAN clamps every parameter to [-c, c], which
bounds the Lipschitz constant only loosely and is known to make training fragile. TGAN's singular
value clipping (SVC) bounds each layer's spectral norm, i.e. each layer's own Lipschitz constant, by 1:

- a conv or linear weight is reshaped to a matrix (out, in * k...) as in the paper, decomposed with
  `torch.linalg.svd`, its singular values clamped to <= 1 and the matrix written back;
- a batch-norm layer is the per-channel linear map x -> gamma * x / sqrt(var + eps) + beta, a
  diagonal matrix whose singular values are |gamma_i| / sqrt(var_i + eps). Clamping them to <= 1 is
  |gamma_i| <= sqrt(running_var_i + eps), the same rule as for the weights applied to a diagonal
  matrix. The running variance stands in for the batch variance that training-mode batch norm
  divides by (as in the authors' release, which also uses the moving average). The release further
  floors gamma at 0.01 * std and so forces it positive; that floor is not part of the bound and the
  sign of gamma is kept here. The shift beta does not change the Lipschitz constant.

Activations (leaky ReLU) are 1-Lipschitz already. SVC costs one SVD per layer, so TGAN applies it
every few critic steps rather than every step (`train.py --svc-every`).
"""

from __future__ import annotations

import torch
from torch import nn

# Layers whose weight SVC clips: convolutions of any dimension (transposed too) and linear layers.
_WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
# A matrix just written back with singular values at the bound reads back a few float32 ulps above it;
# within this relative margin it counts as clipped (so a second pass does not redo the SVD).
ROUNDING_MARGIN = 1e-5


def weight_matrix(layer: nn.Module) -> torch.Tensor:
    """The layer's weight as a matrix (out, in * kernel...): the map from an input patch to the output
    channels. Transposed convs store (in, out, k...), so their first two dims are swapped first."""
    weight = layer.weight
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


def clipped_weight_layers(module: nn.Module) -> list[nn.Module]:
    """The conv and linear layers of `module` whose weights SVC clips."""
    return [layer for layer in module.modules() if isinstance(layer, _WEIGHT_LAYERS)]


def clip_singular_values(matrix: torch.Tensor, max_value: float = 1.0) -> torch.Tensor | None:
    """matrix (m, n) -> the same matrix with every singular value clamped to <= max_value, or None when
    none exceeds it (beyond `ROUNDING_MARGIN`). The SVD runs in float32 (float64 if given), whatever
    the training precision."""
    work = matrix.detach() if matrix.dtype == torch.float64 else matrix.detach().float()
    u, singular_values, vh = torch.linalg.svd(work, full_matrices=False)
    if singular_values.max() <= max_value * (1 + ROUNDING_MARGIN):
        return None
    return ((u * singular_values.clamp(max=max_value)[None]) @ vh).to(matrix.dtype)


@torch.no_grad()
def singular_value_clip_(module: nn.Module, max_value: float = 1.0) -> int:
    """Clip, in place, the singular values of every conv / linear weight of `module` to <= max_value,
    and every batch-norm layer's |gamma| to <= max_value * sqrt(running_var + eps) (see the module
    docstring). Returns how many weights were changed (those already within the bound are skipped)."""
    changed = 0
    for layer in clipped_weight_layers(module):
        clipped = clip_singular_values(weight_matrix(layer), max_value)
        if clipped is None:
            continue  # already within the bound
        if isinstance(layer, nn.modules.conv._ConvTransposeNd):
            shape = layer.weight.transpose(0, 1).shape
            layer.weight.copy_(clipped.reshape(shape).transpose(0, 1))
        else:
            layer.weight.copy_(clipped.reshape(layer.weight.shape))
        changed += 1
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
            if layer.running_var is None:
                raise ValueError(
                    "Singular value clipping of batch norm needs running statistics "
                    "(track_running_stats=True)."
                )
            bound = max_value * torch.sqrt(layer.running_var + layer.eps).to(layer.weight.dtype)
            if (layer.weight.abs() > bound).any():
                layer.weight.copy_(torch.maximum(torch.minimum(layer.weight, bound), -bound))
                changed += 1
    return changed


@torch.no_grad()
def weight_clip_(module: nn.Module, bound: float = 0.01) -> None:
    """Plain WGAN (Arjovsky et al. 2017): clamp every parameter of `module` to [-bound, bound], in place."""
    if bound <= 0:
        raise ValueError(f"bound must be positive, got {bound}.")
    for parameter in module.parameters():
        parameter.clamp_(-bound, bound)


@torch.no_grad()
def layer_spectral_norms(module: nn.Module) -> dict[str, float]:
    """Largest singular value of every SVC-clipped layer (weights as `weight_matrix`; batch norm as the
    diagonal map gamma / sqrt(running_var + eps)), by layer name: to check and log the bound."""
    norms = {}
    for name, layer in module.named_modules():
        if isinstance(layer, _WEIGHT_LAYERS):
            norms[name] = torch.linalg.matrix_norm(weight_matrix(layer).float(), ord=2).item()
        elif (
            isinstance(layer, nn.modules.batchnorm._BatchNorm)
            and layer.affine
            and layer.running_var is not None
        ):
            scale = layer.weight.abs() / torch.sqrt(layer.running_var + layer.eps)
            norms[name] = scale.max().item()
    return norms
