"""hueflow's TGANPipeline, for Diffusers' generic loader on this folder:

    DiffusionPipeline.from_pretrained("<this folder>", trust_remote_code=True)

The code is the hueflow package (`pipelines`), which must be importable: run from a clone of the
hueflow repository, or put it on PYTHONPATH. Without Diffusers' loader no code needs trusting, and a Hub
repo id works too: `pipelines.TGANPipeline.from_pretrained(<folder or repo id>)`.
Diffusers 0.42 refuses the Hub repo id of this folder before it reads this file (diffusers issue #6563):
download the repo first (`huggingface_hub.snapshot_download`) and pass the folder.
"""

import importlib

try:
    TGANPipeline = importlib.import_module("pipelines").TGANPipeline
except (ImportError, AttributeError) as error:
    raise ImportError(
        "This model folder needs the hueflow package, to import "
        "pipelines.TGANPipeline: run from a clone of the hueflow "
        "repository or add it to PYTHONPATH, then load again."
    ) from error
