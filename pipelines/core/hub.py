"""Loading from a local folder or a Hub repo id.

Diffusers 0.42 loads pipelines made of this package's own classes from a local folder, but its
`DiffusionPipeline.download()` rejects them for a Hub repo id (diffusers issue #6563). So a repo
id is resolved here with `huggingface_hub.snapshot_download` and the folder is loaded as usual.
"""

from __future__ import annotations

import os
from pathlib import Path

from diffusers import DiffusionPipeline
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError

# Keyword arguments of `from_pretrained` that belong to the download, not to the model loading.
_HUB_KWARGS = ("cache_dir", "revision", "token", "local_files_only", "force_download", "proxies")


class PipelineInputError(ValueError):
    """An argument of a pipeline call that cannot be used. `argument` names it as `__call__` spells it
    ("exemplar_frames", "edited_frame", ...), so an app can tell which of its fields to fix."""

    def __init__(self, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class PretrainedLoadError(OSError):
    """A model folder or Hub repository could not be found or fetched."""


def resolve_pretrained_path(name_or_path: str | os.PathLike, **hub_kwargs) -> Path:
    """A local folder is returned as is; anything else is taken as a Hub repo id and downloaded
    (or found in the local Hugging Face cache) with `snapshot_download`."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file() and not (path / "config.json").is_file():
            raise PretrainedLoadError(
                f"{path} holds no model_index.json or config.json: is it a saved model folder?"
            )
        return path
    repo_id = str(name_or_path)
    if path.exists() or repo_id.count("/") > 1 or repo_id.startswith((".", "/")):
        raise PretrainedLoadError(f"{repo_id!r} is neither a model folder nor a Hub repo id (ORG/NAME).")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return Path(snapshot_download(repo_id, **{k: v for k, v in hub_kwargs.items() if v is not None}))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, OSError) as error:
        hint = (
            "HF_HUB_OFFLINE=1 is set and the repo is not in the local Hugging Face cache"
            if offline
            else "the Hub could not be reached or the repo does not exist"
        )
        raise PretrainedLoadError(
            f"Could not load {repo_id!r}: {hint}. Pass a local folder (e.g. checkpoints/colormnet-lite), "
            f"or download the repo once with network access (`huggingface-cli download {repo_id}`) and "
            f"then set HF_HUB_OFFLINE=1. ({type(error).__name__}: {error})"
        ) from error


class HueflowPipeline(DiffusionPipeline):
    """Base class of every hueflow pipeline: `from_pretrained` takes a folder or a Hub repo id."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        hub_kwargs = {key: kwargs.pop(key) for key in _HUB_KWARGS if key in kwargs}
        folder = resolve_pretrained_path(pretrained_model_name_or_path, **hub_kwargs)
        return super().from_pretrained(folder, **kwargs)
