"""Memory-based feature propagation (MFP): XMem-style memory with a bounded size.

- permanent memory: the exemplars, never evicted;
- working memory: every `memory_every`-th processed frame, as whole frames;
- long-term memory: when working memory holds more than `max_working_frames`, its oldest frames
  (all but the newest `min_working_frames`) are compressed into `num_prototypes` prototypes per
  compression: the elements the readout used most, with values read out from the frames they
  summarise. Long-term memory never holds more than `max_long_term_elements`; past that the
  least-used elements go.

The readout (affinity -> top-k softmax -> weighted values) lives in `core.attention`. Tensors keep
a batch dimension so training runs clips in batches; shapes: keys (B, Ck, N), values (B, Cv, N).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.attention import memory_readout


@dataclass
class MemoryConfig:
    top_k: int = 30
    memory_every: int = 5
    max_working_frames: int = 6
    min_working_frames: int = 3
    num_prototypes: int = 128
    # Every element costs readout time on every frame: 1024 keeps a 1000-frame film within a few percent
    # of a 100-frame clip's speed on 2 CPU cores (4096 cost 20% more per frame once full).
    max_long_term_elements: int = 1024

    def __post_init__(self) -> None:
        if not 1 <= self.min_working_frames < self.max_working_frames:
            raise ValueError("need 1 <= min_working_frames < max_working_frames")
        if (
            self.memory_every < 1
            or self.top_k < 1
            or self.num_prototypes < 1
            or self.max_long_term_elements < 1
        ):
            raise ValueError("memory_every, top_k, num_prototypes and max_long_term_elements must be >= 1")


class ColorMemory:
    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self.permanent_key: torch.Tensor | None = None
        self.permanent_value: torch.Tensor | None = None
        self.working: list[
            list[torch.Tensor]
        ] = []  # per frame: [key (B,Ck,HW), value (B,Cv,HW), usage (B,HW)]
        self.long_term_key: torch.Tensor | None = None
        self.long_term_value: torch.Tensor | None = None
        self.long_term_usage: torch.Tensor | None = None

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def num_working_frames(self) -> int:
        return len(self.working)

    @property
    def num_long_term_elements(self) -> int:
        return 0 if self.long_term_key is None else self.long_term_key.shape[-1]

    @property
    def num_permanent_elements(self) -> int:
        return 0 if self.permanent_key is None else self.permanent_key.shape[-1]

    # -- writing ---------------------------------------------------------------------------------
    def add_permanent(self, key: torch.Tensor, value: torch.Tensor) -> None:
        """An exemplar: key (B, Ck, h, w) or (B, Ck, N), value likewise."""
        key, value = key.flatten(2), value.flatten(2)
        if self.permanent_key is None:
            self.permanent_key, self.permanent_value = key, value
        else:
            self.permanent_key = torch.cat([self.permanent_key, key], dim=-1)
            self.permanent_value = torch.cat([self.permanent_value, value], dim=-1)

    def add_working(self, key: torch.Tensor, value: torch.Tensor) -> None:
        key, value = key.flatten(2), value.flatten(2)
        self.working.append([key, value, key.new_zeros(key.shape[0], key.shape[-1])])
        if len(self.working) > self.config.max_working_frames:
            self._compress_oldest_frames()

    def _compress_oldest_frames(self) -> None:
        count = len(self.working) - self.config.min_working_frames
        oldest, self.working = self.working[:count], self.working[count:]
        key = torch.cat([frame[0] for frame in oldest], dim=-1)
        value = torch.cat([frame[1] for frame in oldest], dim=-1)
        usage = torch.cat([frame[2] for frame in oldest], dim=-1)
        # Prototypes: the most-used elements; their values are read out from all compressed
        # elements (XMem's memory potentiation), so each prototype summarises its neighbourhood.
        count = min(self.config.num_prototypes, key.shape[-1])
        index = usage.topk(count, dim=-1).indices  # (B, P)
        prototype_key = key.gather(-1, index.unsqueeze(1).expand(-1, key.shape[1], -1))
        prototype_value, _ = memory_readout(prototype_key, key, value, self.config.top_k)
        prototype_usage = usage.gather(-1, index)
        if self.long_term_key is None:
            self.long_term_key, self.long_term_value, self.long_term_usage = (
                prototype_key,
                prototype_value,
                prototype_usage,
            )
        else:
            self.long_term_key = torch.cat([self.long_term_key, prototype_key], dim=-1)
            self.long_term_value = torch.cat([self.long_term_value, prototype_value], dim=-1)
            self.long_term_usage = torch.cat([self.long_term_usage, prototype_usage], dim=-1)
        excess = self.num_long_term_elements - self.config.max_long_term_elements
        if excess > 0:
            keep = (
                self.long_term_usage.topk(self.config.max_long_term_elements, dim=-1)
                .indices.sort(dim=-1)
                .values
            )
            self.long_term_key = self.long_term_key.gather(
                -1, keep.unsqueeze(1).expand(-1, self.long_term_key.shape[1], -1)
            )
            self.long_term_value = self.long_term_value.gather(
                -1, keep.unsqueeze(1).expand(-1, self.long_term_value.shape[1], -1)
            )
            self.long_term_usage = self.long_term_usage.gather(-1, keep)

    # -- reading ---------------------------------------------------------------------------------
    def readout(self, query_key: torch.Tensor) -> torch.Tensor:
        """query_key (B, Ck, M) -> readout (B, Cv, M); records how much each element was used."""
        if self.permanent_key is None:
            raise RuntimeError("memory is empty: add at least one exemplar first")
        keys = [self.permanent_key]
        values = [self.permanent_value]
        if self.long_term_key is not None:
            keys.append(self.long_term_key)
            values.append(self.long_term_value)
        keys += [frame[0] for frame in self.working]
        values += [frame[1] for frame in self.working]
        readout, usage = memory_readout(
            query_key, torch.cat(keys, -1), torch.cat(values, -1), self.config.top_k
        )
        usage = usage.detach()
        offset = self.num_permanent_elements
        if self.long_term_usage is not None:
            self.long_term_usage = (
                self.long_term_usage + usage[:, offset : offset + self.num_long_term_elements]
            )
            offset += self.num_long_term_elements
        for frame in self.working:
            size = frame[0].shape[-1]
            frame[2] = frame[2] + usage[:, offset : offset + size]
            offset += size
        return readout
