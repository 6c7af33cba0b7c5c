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
import time

import torch
from common import Benchmark

from pipelines.pseudo_video import PseudoVideoPipeline

BENCHMARK = Benchmark(
    script="benchmarks/pseudo_video_speed.py",
    title="Pseudo-video generation speed",
    default_model="checkpoints/pseudo-video-digits",
    table_header=(
        "| date | machine | torch threads | model | image size | frames per image | batch | images "
        "| images/s | command |\n"
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"
    ),
    description=(
        "PseudoVideoPipeline sampling images (each the last frame of its pseudo video) on the CPU, "
        "model load and one warm-up batch excluded."
    ),
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
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    args = BENCHMARK.parse_args(parser, argv)
    if args.images < 1 or args.batch_size < 1:
        raise SystemExit("--images and --batch-size must be at least 1")
    result = run(args.model, args.images, args.batch_size)
    cells = [
        result["image_size"],
        str(result["frames"]),
        str(args.batch_size),
        str(args.images),
        f"{result['images_per_second']:.1f}",
    ]
    flags = ["--images", str(args.images), "--batch-size", str(args.batch_size)]
    BENCHMARK.record_run(args, result["torch_threads"], cells, flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
