"""Images per second of PseudoVideoPipeline on this machine's CPU.

    python benchmarks/pseudo_video_speed.py                       # 512 images in batches of 64
    python benchmarks/pseudo_video_speed.py --images 64 --no-record  # smoke test, nothing written

The embedded model is loaded once, one warm-up batch is generated and not timed, then `--images` images are
generated in batches of `--batch-size` with a seeded generator and `output_type="np"` (the uint8 images a
user gets; the pseudo videos are not returned). The markdown row is printed and, unless `--no-record`,
appended to benchmarks/RESULTS.md under this benchmark's heading, with the exact command.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from benchmarks.colorization_speed import machine_description, print_and_record  # noqa: E402
from pipelines.pseudo_video import PseudoVideoPipeline  # noqa: E402

DEFAULT_MODEL = "checkpoints/pseudo-video-digits"
HEADING = "## Pseudo-video generation speed (`benchmarks/pseudo_video_speed.py`)"
TABLE_HEADER = (
    "| date | machine | torch threads | model | image size | frames per image | batch | images | images/s "
    "| command |\n"
    "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"
)
DESCRIPTION = (
    "PseudoVideoPipeline sampling images (each the last frame of its pseudo video) on the CPU, "
    "model load and one warm-up batch excluded."
)


def run(model: str, num_images: int, batch_size: int) -> dict:
    pipe = PseudoVideoPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    warmup = pipe(num_images=batch_size, generator=generator, output_type="np")
    begin = time.perf_counter()
    done = 0
    while done < num_images:
        count = min(batch_size, num_images - done)
        pipe(num_images=count, generator=generator, output_type="np")
        done += count
    seconds = time.perf_counter() - begin
    height, width = warmup.images.shape[1:3]
    return {
        "images_per_second": num_images / seconds,
        "image_size": f"{height}x{width}",
        "frames": pipe.scheduler.config.num_frames,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.images < 1 or args.batch_size < 1:
        raise SystemExit("--images and --batch-size must be at least 1")
    result = run(args.model, args.images, args.batch_size)
    command = ["python", "benchmarks/pseudo_video_speed.py", "--images", str(args.images)]
    command += ["--batch-size", str(args.batch_size)]
    if args.model != DEFAULT_MODEL:
        command += ["--model", args.model]
    cells = [
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        machine_description(),
        str(result["torch_threads"]),
        args.model,
        result["image_size"],
        str(result["frames"]),
        str(args.batch_size),
        str(args.images),
        f"{result['images_per_second']:.1f}",
        f"`{shlex.join(command)}`",
    ]
    print_and_record(cells, HEADING, TABLE_HEADER, DESCRIPTION, save=not args.no_record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
