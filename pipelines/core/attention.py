"""Affinity, top-k memory readout and local-window attention: the matching math shared by the
colorization, appearance-transfer and correspondence pipelines.

Shapes: B batch, C key channels, Cv value channels, N memory elements, M query positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def affinity(
    query_key: torch.Tensor, memory_key: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product affinity. query (B, C, M), memory (B, C, N) -> (B, M, N), written into `out`
    (a contiguous (B, M, N) tensor) when given.

    Query-major, so the top-k and softmax over memory run along the contiguous last axis (about
    4x faster on a CPU than along a strided one). The query is scaled rather than the logits: M x C
    values instead of M x N, and no second logits-sized tensor."""
    scaled_query = query_key / math.sqrt(query_key.shape[1])
    if out is None:
        return torch.einsum("bcm,bcn->bmn", scaled_query, memory_key)
    return torch.bmm(scaled_query.transpose(1, 2), memory_key, out=out)


# Logits per query block in `memory_readout`: 6 M (24 MB) at most, about 500 of the 1824 queries of an 854x480
# frame against 12k memory elements. Blocks keep the (B, M, N) affinity from being held whole, and all blocks
# of a call are written into one buffer of this fixed size: a fresh logits tensor per block, its size changing
# with the memory's, left glibc's heap fragmented, and the process's peak RSS kept creeping up over a film
# (+100 MB between frame 100 and frame 1000 at 854x480) where the memory itself is bounded.
READOUT_BLOCK_LOGITS = 6_000_000


def memory_readout(
    query_key: torch.Tensor,
    memory_key: torch.Tensor,
    memory_value: torch.Tensor,
    top_k: int | None,
    block_logits: int = READOUT_BLOCK_LOGITS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read values from memory for every query position: affinity -> softmax over each query's top-k
    memory elements (XMem, ColorMNet: a large memory must not blur the readout with many weak matches)
    -> weighted values.

    query_key (B, C, M), memory_key (B, C, N), memory_value (B, Cv, N)
    -> readout (B, Cv, M) and usage (B, N): the total weight each memory element received,
    which the memory uses to decide what to keep.

    Queries go in blocks of about `block_logits / N` rows, so the (B, M, N) affinity is never held
    whole (about 40% less time per frame at 854x480), and share one logits buffer (READOUT_BLOCK_LOGITS).
    The top-k values are gathered rather than multiplied as a dense weight matrix that is zero almost
    everywhere.
    """
    batch, _, num_queries = query_key.shape
    num_elements = memory_key.shape[-1]
    if top_k is None or top_k >= num_elements:
        weights = torch.softmax(affinity(query_key, memory_key), dim=-1)  # (B, M, N)
        return torch.bmm(memory_value, weights.transpose(1, 2)), weights.sum(dim=1)
    rows = torch.arange(batch, device=query_key.device)[:, None]
    values = memory_value.transpose(1, 2)  # (B, N, Cv)
    usage = memory_value.new_zeros(batch, num_elements)
    readouts = []
    block = min(num_queries, max(1, block_logits // (batch * num_elements)))
    # Without autograd, every block's logits go into one buffer (see READOUT_BLOCK_LOGITS) whose size is the
    # same on every call once the memory needs blocks, so the allocator hands back the same chunk each frame.
    # out= has no gradient, so training takes fresh tensors.
    needs_grad = torch.is_grad_enabled() and (query_key.requires_grad or memory_key.requires_grad)
    buffer_size = batch * num_queries * num_elements
    if block < num_queries:
        buffer_size = max(block_logits, batch * num_elements)
    buffer = None if needs_grad else query_key.new_empty(buffer_size)
    for start in range(0, num_queries, block):
        query_block = query_key[..., start : start + block]
        out = None
        if buffer is not None:
            out = buffer[: batch * query_block.shape[-1] * num_elements].view(batch, -1, num_elements)
        logits = affinity(query_block, memory_key, out=out)  # (B, m, N)
        top_logits, indices = torch.topk(logits, k=top_k, dim=-1)  # (B, m, k)
        weights = torch.softmax(top_logits, dim=-1)
        picked = values[rows, indices.flatten(1)].view(*indices.shape, -1)  # (B, m, k, Cv)
        readouts.append((weights.unsqueeze(-1) * picked).sum(dim=2))  # (B, m, Cv)
        usage.scatter_add_(1, indices.flatten(1), weights.flatten(1))
    return torch.cat(readouts, dim=1).transpose(1, 2), usage


def local_window_attention(
    query_key: torch.Tensor, key: torch.Tensor, value: torch.Tensor, radius: int
) -> torch.Tensor:
    """Each query position attends to the (2r+1)^2 window around the same position in another frame.

    query_key, key (B, C, H, W), value (B, Cv, H, W) -> (B, Cv, H, W). Positions of the window that
    fall outside the frame are masked out rather than matched against zero padding.

    Each window offset is one shifted view of the padded frame, matched by an elementwise product and
    a channel sum: about 10x faster on a CPU than unfolding every window into a (B, C, K, H*W) copy,
    whose contraction runs as H*W tiny matrix products.
    """
    batch, channels, height, width = query_key.shape
    window = 2 * radius + 1
    offsets = [(dy, dx) for dy in range(window) for dx in range(window)]
    padding = (radius, radius, radius, radius)
    key, value = F.pad(key, padding), F.pad(value, padding)
    inside = F.pad(torch.ones_like(query_key[:1, :1], dtype=torch.bool), padding)

    def shifted(tensor: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        return tensor[..., dy : dy + height, dx : dx + width]

    logits = torch.cat(
        [(query_key * shifted(key, dy, dx)).sum(dim=1, keepdim=True) for dy, dx in offsets], dim=1
    ) / math.sqrt(channels)  # (B, K, H, W)
    valid = torch.cat([shifted(inside, dy, dx) for dy, dx in offsets], dim=1)  # (1, K, H, W)
    weights = torch.softmax(logits.masked_fill(~valid, float("-inf")), dim=1)
    return sum(
        weights[:, index : index + 1] * shifted(value, dy, dx) for index, (dy, dx) in enumerate(offsets)
    )


def block_match_attention(
    query_luminance: torch.Tensor,
    luminance: torch.Tensor,
    value: torch.Tensor,
    radius: int,
    temperature: float,
    block: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft block matching: each `block` x `block` cell of the query frame reads `value` from the
    (2r+1)^2 window of cells around it in another frame, weighted by softmax(-cost / temperature), where
    the cost is the mean squared difference of the (3 * block)^2 luminance patches centred on the two
    cells (L/100). Raw luminance patches match sharply and exactly where a frame barely changes, which
    keys learned in minutes of training do not.

    query_luminance, luminance (B, 1, H, W) in [0, 100], H and W multiples of `block`; value
    (B, Cv, H/block, W/block) -> readout (B, Cv, H/block, W/block) and the best match's cost (B, 1,
    H/block, W/block), which says where no good match exists (occlusion, a cut).

    Each offset's per-pixel squared difference is box-summed over the patches with one `avg_pool2d`,
    about 3x cheaper than differencing unfolded (3 * block)^2-channel patch vectors. Frame borders are
    replicated, so a window leaving the frame re-reads the edge.
    """
    height, width = value.shape[-2:]
    query, other = query_luminance / 100.0, luminance / 100.0
    reach = radius * block  # the window's reach in pixels
    other = F.pad(other, (reach, reach, reach, reach), mode="replicate")
    window = 2 * radius + 1
    offsets = [(dy, dx) for dy in range(window) for dx in range(window)]
    full_height, full_width = query.shape[-2:]
    squared = torch.cat(
        [
            (query - other[..., dy * block : dy * block + full_height, dx * block : dx * block + full_width])
            ** 2
            for dy, dx in offsets
        ],
        dim=1,
    )  # (B, K, H, W)
    costs = F.avg_pool2d(squared, 3 * block, stride=block, padding=block)  # (B, K, H/block, W/block)
    weights = torch.softmax(-costs / temperature, dim=1)
    value = F.pad(value, (radius, radius, radius, radius), mode="replicate")
    readout = sum(
        weights[:, index : index + 1] * value[..., dy : dy + height, dx : dx + width]
        for index, (dy, dx) in enumerate(offsets)
    )
    return readout, costs.amin(dim=1, keepdim=True)


def windowed_topk_readout(
    query: torch.Tensor,
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    radius: int,
    top_k: int,
    temperature: float,
    tile: int = 16,
) -> torch.Tensor:
    """Read values from several context frames for every query position, each query seeing only the
    (2r+1)^2 window around its own position in each frame, through its `top_k` best matches over all
    frames, weighted by softmax(affinity / temperature).

    query (C, h, w), keys [(C, h, w)] * F, values [(K, h, w)] * F -> (K, h, w). Queries go a
    `tile` x `tile` square at a time against the square of key positions their windows reach, as one
    matrix product per frame masked to each query's window (far faster on a CPU than gathering each
    query's window). Square tiles rather than bands of whole rows: with r = 12 and tile 16, 39% of
    the computed affinities are inside a window, against 14% for a 16-row band of a 114-cell-wide
    frame. Each frame keeps only its own top-k before the merge, so memory stays at one tile's block.
    """
    channels, height, width = query.shape
    positions = torch.arange(max(height, width), device=query.device)
    far = (positions[:, None] - positions[None, :]).abs() > radius  # (P, P): farther apart than the radius
    output = query.new_empty(values[0].shape[0], height, width)
    for top in range(0, height, tile):
        bottom = min(top + tile, height)
        first, last = max(0, top - radius), min(height, bottom + radius)  # key rows the windows reach
        for left in range(0, width, tile):
            right = min(left + tile, width)
            start, stop = max(0, left - radius), min(width, right + radius)  # key columns they reach
            rows, columns = bottom - top, right - left
            # (m, n): key positions outside each query's window, by broadcasting rows and columns
            outside = (
                far[top:bottom, first:last].view(rows, 1, last - first, 1)
                | far[left:right, start:stop].view(1, columns, 1, stop - start)
            ).view(rows * columns, -1)
            queries = query[:, top:bottom, left:right].reshape(channels, -1).T  # (m, C)
            top_logits, top_values = [], []
            for key, value in zip(keys, values, strict=True):
                reachable = key[:, first:last, start:stop].reshape(channels, -1)  # (C, n)
                logits = (queries @ reachable).masked_fill_(outside, float("-inf"))
                best, index = logits.topk(min(top_k, logits.shape[1]), dim=1)  # (m, k)
                top_logits.append(best)
                top_values.append(value[:, first:last, start:stop].reshape(value.shape[0], -1)[:, index])
            merged = torch.cat(top_logits, dim=1)
            best, index = merged.topk(min(top_k, merged.shape[1]), dim=1)
            weights = torch.softmax(best / temperature, dim=1)  # (m, k)
            candidates = torch.cat(top_values, dim=2)  # (K, m, F*k)
            chosen = candidates.gather(2, index.expand(candidates.shape[0], -1, -1))
            output[:, top:bottom, left:right] = (chosen * weights).sum(dim=2).view(-1, rows, columns)
    return output
