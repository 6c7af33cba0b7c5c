"""Affinity, top-k memory readout and local-window attention: the matching math shared by the
colorization, appearance-transfer and correspondence pipelines.

Shapes: B batch, C key channels, Cv value channels, N memory elements, M query positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def affinity(query_key: torch.Tensor, memory_key: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product affinity. query (B, C, M), memory (B, C, N) -> (B, M, N).

    Query-major, so the top-k and softmax over memory run along the contiguous last axis (about
    4x faster on a CPU than along a strided one)."""
    return torch.einsum("bcm,bcn->bmn", query_key, memory_key) / math.sqrt(query_key.shape[1])


def topk_softmax(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Softmax over the memory axis (last) keeping only each query's top-k memory elements.

    logits (B, M, N) -> weights (B, M, N), zero outside the top-k. Restricting to top-k (XMem,
    ColorMNet) keeps a large memory from blurring the readout with many weak matches.
    """
    if top_k is None or top_k >= logits.shape[-1]:
        return torch.softmax(logits, dim=-1)
    values, indices = torch.topk(logits, k=top_k, dim=-1)
    weights = torch.zeros_like(logits)
    return weights.scatter_(-1, indices, torch.softmax(values, dim=-1))


def memory_readout(
    query_key: torch.Tensor, memory_key: torch.Tensor, memory_value: torch.Tensor, top_k: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read values from memory for every query position.

    query_key (B, C, M), memory_key (B, C, N), memory_value (B, Cv, N)
    -> readout (B, Cv, M) and usage (B, N): the total weight each memory element received,
    which the memory uses to decide what to keep.
    """
    weights = topk_softmax(affinity(query_key, memory_key), top_k)  # (B, M, N)
    readout = torch.bmm(memory_value, weights.transpose(1, 2))
    return readout, weights.sum(dim=1)


def local_window_attention(
    query_key: torch.Tensor, key: torch.Tensor, value: torch.Tensor, radius: int
) -> torch.Tensor:
    """Each query position attends to the (2r+1)^2 window around the same position in another frame.

    query_key, key (B, C, H, W), value (B, Cv, H, W) -> (B, Cv, H, W). Positions of the window that
    fall outside the frame are masked out rather than matched against zero padding.
    """
    batch, channels, height, width = query_key.shape
    window = 2 * radius + 1
    key_windows = F.unfold(key, window, padding=radius).view(batch, channels, window * window, height * width)
    value_windows = F.unfold(value, window, padding=radius).view(batch, -1, window * window, height * width)
    inside = F.unfold(torch.ones_like(key[:1, :1]), window, padding=radius) > 0  # (1, K, H*W)
    logits = torch.einsum("bcm,bckm->bkm", query_key.flatten(2), key_windows) / math.sqrt(channels)
    weights = torch.softmax(logits.masked_fill(~inside, float("-inf")), dim=1)  # (B, K, H*W)
    readout = torch.einsum("bkm,bckm->bcm", weights, value_windows)
    return readout.view(batch, -1, height, width)
