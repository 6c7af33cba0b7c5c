"""How tracks are drawn on a video: the overlay of `CorrespondencePipeline(..., output_path=...)`.

`PALETTE` gives the colour of each mask id (id 1 is its first row, id 2 its second, ...) and of each
point (point 0 the first row); `draw_tracks` tints and outlines a frame's objects and draws its points.
The Track tab uses both, so its brush colours and point previews are the overlay's.
"""

from __future__ import annotations

import cv2
import numpy as np

# Overlay colours (RGB) of mask ids 1, 2, ... (id 0, the background, is left as it is) and points 0, 1, ...
PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]],
    dtype=np.float32,
)  # fmt: skip


def draw_tracks(frame: np.ndarray, points: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """The RGB uint8 frame (H, W, 3) with each object of the label map `mask` (H, W) tinted and
    outlined, and `points` (N, 2) x, y pixels drawn as dots."""
    out = frame.astype(np.float32)
    if mask is not None:
        for label in np.unique(mask):
            if label != 0:  # coloured by id, so an object keeps its colour when another leaves the frame
                region = mask == label
                out[region] = 0.5 * out[region] + 0.5 * PALETTE[(int(label) - 1) % len(PALETTE)]
    out = out.round().astype(np.uint8)
    if mask is not None:
        edges = cv2.morphologyEx((mask != 0).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        out[edges > 0] = 255
    if points is not None:
        radius = max(2, round(min(frame.shape[:2]) / 120))
        for index, (x, y) in enumerate(points):
            colour = tuple(int(c) for c in PALETTE[index % len(PALETTE)])
            cv2.circle(out, (round(float(x)), round(float(y))), radius + 1, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(out, (round(float(x)), round(float(y))), radius, colour, -1, cv2.LINE_AA)
    return out
