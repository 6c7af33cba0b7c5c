"""The matching math of pipelines/core/attention.py, on small tensors with known answers."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipelines.core.attention import (
    affinity,
    block_match_attention,
    local_window_attention,
    memory_readout,
    windowed_topk_readout,
)


def test_memory_readout_is_the_softmax_over_each_querys_top_k():
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 8, 5, generator=generator)
    memory_key = torch.randn(2, 8, 12, generator=generator)
    memory_value = torch.randn(2, 3, 12, generator=generator)
    logits = affinity(query, memory_key)  # (2, 5, 12)
    top = logits.topk(3, dim=-1)
    dense = torch.zeros_like(logits).scatter_(-1, top.indices, torch.softmax(top.values, dim=-1))
    readout, usage = memory_readout(query, memory_key, memory_value, top_k=3)
    assert torch.allclose(readout, torch.bmm(memory_value, dense.transpose(1, 2)), atol=1e-6)
    assert torch.allclose(usage, dense.sum(dim=1), atol=1e-6)
    assert ((usage > 0).sum(-1) <= 15).all() and torch.allclose(usage.sum(-1), torch.full((2,), 5.0))
    full_readout, _ = memory_readout(query, memory_key, memory_value, top_k=None)
    expected = torch.bmm(memory_value, torch.softmax(logits, dim=-1).transpose(1, 2))
    assert torch.allclose(full_readout, expected, atol=1e-6)


def test_memory_readout_in_query_blocks_equals_one_block():
    generator = torch.Generator().manual_seed(1)
    query = torch.randn(2, 8, 23, generator=generator)
    memory_key = torch.randn(2, 8, 40, generator=generator)
    memory_value = torch.randn(2, 3, 40, generator=generator)
    whole = memory_readout(query, memory_key, memory_value, top_k=4)
    blocked = memory_readout(query, memory_key, memory_value, top_k=4, block_logits=2 * 40 * 5)  # 5 rows
    assert torch.allclose(whole[0], blocked[0], atol=1e-6) and torch.allclose(whole[1], blocked[1], atol=1e-6)


def test_memory_readout_finds_the_matching_element():
    memory_key = torch.eye(6).unsqueeze(0) * 20  # six well-separated keys
    memory_value = torch.arange(6.0).view(1, 1, 6)
    query = memory_key[:, :, [4, 1]]
    readout, usage = memory_readout(query, memory_key, memory_value, top_k=2)
    assert torch.allclose(readout, torch.tensor([[[4.0, 1.0]]]), atol=1e-3)
    assert usage.shape == (1, 6) and usage[0, 4] > 0.99 and usage[0, 1] > 0.99


def _textured_luminance(height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 1, height, width, generator=generator) * 100


def test_patch_match_follows_a_shift():
    frame = _textured_luminance(40, 48)
    shifted = torch.roll(frame, shifts=(2, 4), dims=(2, 3))  # 1 and 2 blocks at stride 2
    value = torch.randn(1, 2, 20, 24)
    readout, cost = block_match_attention(shifted, frame, value, radius=2, temperature=1e-4)
    assert readout.shape == (1, 2, 20, 24) and cost.shape == (1, 1, 20, 24)
    expected = torch.roll(value, shifts=(1, 2), dims=(2, 3))
    inside = (slice(None), slice(None), slice(3, -3), slice(4, -4))  # away from the wrapped borders
    assert torch.allclose(readout[inside], expected[inside], atol=1e-4)
    assert cost[inside].max() < 1e-8


def test_patch_match_cost_flags_an_unrelated_frame():
    frame = _textured_luminance(32, 32)
    other = torch.flip(frame, dims=(2,))
    value = torch.zeros(1, 2, 16, 16)
    _, same_cost = block_match_attention(frame, frame, value, 2, 1e-4)
    _, other_cost = block_match_attention(frame, other, value, 2, 1e-4)
    assert same_cost.max() == 0
    assert other_cost.mean() > 0.01  # mean squared difference of L/100


def test_local_window_attention_reads_the_matching_neighbour():
    key = torch.zeros(1, 4, 6, 6)
    key[0, 0] = 10.0  # every position has the same key except one
    key[0, 1, 2, 3], key[0, 0, 2, 3] = 10.0, 0.0
    value = torch.arange(36.0).view(1, 1, 6, 6)
    query = torch.zeros(1, 4, 6, 6)
    query[0, 1] = 30.0  # every query looks for the odd one out
    readout = local_window_attention(query, key, value, radius=1)
    assert torch.allclose(readout[0, 0, 2, 3], value[0, 0, 2, 3], atol=1e-3)  # inside its own window
    assert torch.allclose(readout[0, 0, 1, 2], value[0, 0, 2, 3], atol=1e-3)  # a neighbour sees it too
    assert not torch.allclose(readout[0, 0, 5, 0], value[0, 0, 2, 3], atol=1)  # too far to see it


def test_local_window_attention_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    query, key = torch.randn(2, 1, 5, 5, 6, generator=generator)
    value = torch.randn(1, 3, 5, 6, generator=generator)
    radius = 1
    readout = local_window_attention(query, key, value, radius)
    expected = torch.zeros(1, 3, 5, 6)
    for y in range(5):
        for x in range(6):
            window = [
                (ky, kx)
                for ky in range(max(0, y - radius), min(5, y + radius + 1))
                for kx in range(max(0, x - radius), min(6, x + radius + 1))
            ]
            logits = torch.stack([query[0, :, y, x] @ key[0, :, ky, kx] for ky, kx in window]) / 5**0.5
            weights = torch.softmax(logits, dim=0)
            expected[0, :, y, x] = sum(
                w * value[0, :, ky, kx] for w, (ky, kx) in zip(weights, window, strict=True)
            )
    assert torch.allclose(readout, expected, atol=1e-5)


def test_windowed_topk_readout_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    query, key = (F.normalize(torch.randn(8, 10, 13, generator=generator), dim=0) for _ in range(2))
    other_key = F.normalize(torch.randn(8, 10, 13, generator=generator), dim=0)
    value, other_value = (
        torch.rand(3, 10, 13, generator=generator),
        torch.rand(3, 10, 13, generator=generator),
    )
    radius = 2
    readout = windowed_topk_readout(
        query, [key, other_key], [value, other_value], radius, top_k=1, temperature=1e-4, tile=3
    )
    expected = torch.zeros(3, 10, 13)
    for y in range(10):
        for x in range(13):
            best = -float("inf")
            for frame_key, frame_value in ((key, value), (other_key, other_value)):
                for ky in range(max(0, y - radius), min(10, y + radius + 1)):
                    for kx in range(max(0, x - radius), min(13, x + radius + 1)):
                        score = (query[:, y, x] * frame_key[:, ky, kx]).sum()
                        if score > best:
                            best, expected[:, y, x] = score, frame_value[:, ky, kx]
    assert torch.allclose(readout, expected, atol=1e-5)


def test_windowed_topk_readout_averages_top_k():
    key = F.normalize(torch.ones(4, 6, 6), dim=0)  # every position matches equally
    value = torch.arange(36.0).view(1, 6, 6)
    readout = windowed_topk_readout(key, [key], [value], radius=5, top_k=36, temperature=0.05)
    assert torch.allclose(readout, torch.full((1, 6, 6), value.mean().item()), atol=1e-4)


def test_memory_readout_buffered_blocks_match_the_autograd_path():
    """Inference writes every block's logits into one buffer (out=, no gradient); training takes fresh
    tensors. Both give the same readout, and the training path passes gradients to query and keys."""
    generator = torch.Generator().manual_seed(2)
    query = torch.randn(1, 8, 23, generator=generator)
    memory_key = torch.randn(1, 8, 40, generator=generator)
    memory_value = torch.randn(1, 3, 40, generator=generator)
    with torch.no_grad():
        buffered = memory_readout(query, memory_key, memory_value, top_k=4, block_logits=40 * 5)
    query.requires_grad_(True)
    memory_key.requires_grad_(True)
    trained = memory_readout(query, memory_key, memory_value, top_k=4, block_logits=40 * 5)
    assert torch.allclose(buffered[0], trained[0], atol=1e-6) and torch.allclose(buffered[1], trained[1])
    trained[0].sum().backward()
    assert query.grad is not None and query.grad.abs().sum() > 0 and memory_key.grad.abs().sum() > 0
