"""The Gradio app (Hugging Face Space) around hueflow's pipelines: one module per tab.

A tab module exposes `build_tab(...)`, which renders its components inside the caller's `gr.Tab`
and wires its events; `app.py` puts the tabs together. Pipelines are loaded lazily with
`LazyPipeline`, so the app starts in seconds and only pays for the models a visitor uses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

PipelineT = TypeVar("PipelineT")


class LazyPipeline(Generic[PipelineT]):
    """Loads a pipeline on first use and keeps it for the life of the process.

    Gradio runs events in a thread pool, so two first requests can arrive at once; the lock makes
    sure the checkpoint is read (and its weights allocated) only once.
    """

    def __init__(self, name: str, loader: Callable[[], PipelineT]) -> None:
        self.name = name
        self._loader = loader
        self._pipeline: PipelineT | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    def get(self) -> PipelineT:
        # Fast path without the lock once loaded; the lock only guards the first load.
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    logger.info("Loading the %s pipeline (first use).", self.name)
                    self._pipeline = self._loader()
        return self._pipeline


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) to its luma (ITU-R 601 weights, as Pillow's `convert("L")`), as three equal
    channels so video writers and image components take it like any RGB frame."""
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(luma.round().astype(np.uint8)[..., None], 3, axis=-1)


__all__ = ["LazyPipeline", "to_gray"]
