"""The self-supervised objective: reconstruct a frame's colour from other frames through feature
affinity (no labels), with the multi-cluster sampler and the adaptive fusion loss of Zhou et al.

Shapes: B batch, C feature channels, M query positions, N reference positions (all reference
frames together), S sampled reference positions.

- Reconstruction: each query position's Lab is the softmax(affinity / temperature)-weighted mean
  of the reference positions' Lab. The output is made only of the references' colours, so matching is
  all the encoder can do, whether or not it sees the query's colour.
- Multi-cluster sampler: the reference positions are clustered (k-means on the features, at
  several numbers of clusters) and the same number of samples is drawn from every cluster, so a
  large region of repeated texture (sky, a wall) cannot swamp the softmax of every query; with the
  switch off the same number of positions is drawn uniformly.
- Adaptive fusion loss: per-pixel weights on the reconstruction error from motion strength (moving
  pixels are where correspondence is learned) and cluster consistency (how much of a query's
  attention lands in its own cluster: pixels with a coherent match are trusted more). Weights are
  detached and have mean 1; with the switch off all are 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kmeans(
    points: torch.Tensor, num_clusters: int, iterations: int = 5, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means of L2-normalized points (N, C) -> assignments (N,), centroids (K, C).

    Written by hand (a dozen lines): the library k-means (scikit-learn) works on numpy on the CPU and
    would copy every training step's features off the device."""
    count = points.shape[0]
    num_clusters = min(num_clusters, count)
    start = torch.randperm(count, generator=generator, device="cpu")[:num_clusters].to(points.device)
    centroids = points[start]
    for _ in range(iterations):
        # one-hot matmul rather than index_add_: several times faster on a CPU for these sizes
        members = F.one_hot((points @ centroids.T).argmax(dim=1), num_clusters).to(points.dtype)  # (N, K)
        sums = members.T @ points
        counts = members.sum(dim=0).unsqueeze(1)
        # an empty cluster keeps its centroid rather than collapsing to zero
        centroids = torch.where(counts > 0, F.normalize(sums, dim=1), centroids)
    return (points @ centroids.T).argmax(dim=1), centroids


def multi_cluster_sample(
    features: torch.Tensor,
    num_samples: int,
    cluster_counts: tuple[int, ...] = (4, 8, 16),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference positions drawn evenly from the clusters of `features` (C, N), at every number of
    clusters in `cluster_counts` -> (indices (S,), cluster of each sample at the finest clustering (S,)).

    Each clustering gets an equal share of `num_samples`, split evenly over its clusters (with
    replacement inside a cluster smaller than its share); duplicates are dropped."""
    points = features.detach().T  # (N, C)
    per_scale = max(1, num_samples // len(cluster_counts))
    chosen = []
    finest = None
    for num_clusters in cluster_counts:
        assignments, _ = kmeans(points, num_clusters, generator=generator)
        finest = assignments
        per_cluster = max(1, per_scale // num_clusters)
        for cluster in assignments.unique():
            members = (assignments == cluster).nonzero().squeeze(1)
            picks = torch.randint(len(members), (per_cluster,), generator=generator).to(members.device)
            chosen.append(members[picks])
    indices = torch.cat(chosen).unique()
    return indices, finest[indices]


def uniform_sample(
    num_positions: int, num_samples: int, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`num_samples` distinct positions out of `num_positions`, uniformly (the sampler switched off)."""
    return torch.randperm(num_positions, generator=generator)[:num_samples].to(device)


def reconstruct(
    query: torch.Tensor, reference: torch.Tensor, reference_colour: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """query (C, M), reference (C, S), reference_colour (3, S)
    -> (reconstruction (3, M), attention (M, S))."""
    attention = torch.softmax(query.T @ reference / temperature, dim=1)
    return reference_colour @ attention.T, attention


def adaptive_weights(
    motion: torch.Tensor,
    attention: torch.Tensor,
    query_cluster: torch.Tensor,
    reference_cluster: torch.Tensor,
) -> torch.Tensor:
    """Per-query weights (M,) with mean 1 from motion magnitude (M,) and cluster consistency.

    Consistency is the attention mass (M, S) a query puts on samples of its own cluster. The two
    multiply: a pixel counts most where it moves and its match is coherent."""
    consistency = (attention * (query_cluster[:, None] == reference_cluster[None, :])).sum(dim=1)
    motion_term = 1.0 + motion / motion.mean().clamp_min(1e-6)
    weights = motion_term * (0.5 + consistency)
    return (weights / weights.mean()).detach()


def nearest_cluster(features: torch.Tensor, reference: torch.Tensor, reference_cluster: torch.Tensor):
    """Cluster of each query position (C, M): that of its most similar sampled reference (C, S)."""
    return reference_cluster[(features.T @ reference).argmax(dim=1)]


def reconstruction_loss(
    query_features: torch.Tensor,
    reference_features: torch.Tensor,
    query_colour: torch.Tensor,
    reference_colour: torch.Tensor,
    query_motion: torch.Tensor,
    *,
    num_samples: int,
    temperature: float,
    use_multi_cluster_sampler: bool,
    use_adaptive_loss: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Weighted reconstruction error of one query frame from its reference frames.

    query_features (C, M), reference_features (C, N) of all reference frames together,
    query_colour (3, M) and reference_colour (3, N) scaled Lab, query_motion (M,) flow magnitude
    -> scalar loss (mean over query positions of the weighted smooth-L1 error)."""
    num_positions = reference_features.shape[1]
    if use_multi_cluster_sampler:
        indices, sample_cluster = multi_cluster_sample(reference_features, num_samples, generator=generator)
    else:
        indices = uniform_sample(num_positions, num_samples, reference_features.device, generator)
    reference = reference_features[:, indices]
    reconstruction, attention = reconstruct(
        query_features, reference, reference_colour[:, indices], temperature
    )
    error = F.smooth_l1_loss(reconstruction, query_colour, reduction="none", beta=0.05).sum(dim=0)  # (M,)
    if use_adaptive_loss:
        if not use_multi_cluster_sampler:  # consistency needs clusters: cluster the uniform samples
            sample_cluster, _ = kmeans(reference.detach().T, 16, generator=generator)
        query_cluster = nearest_cluster(query_features.detach(), reference.detach(), sample_cluster)
        error = error * adaptive_weights(query_motion, attention.detach(), query_cluster, sample_cluster)
    return error.mean()
