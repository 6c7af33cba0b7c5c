"""Loading from a local folder or a Hub repo id, the pipelines' dtypes, and Diffusers' generic loader.

Diffusers 0.42 loads pipelines made of this package's own classes from a local folder, but its
`DiffusionPipeline.download()` rejects them for a Hub repo id (diffusers issue #6563). So a repo
id is resolved here with `huggingface_hub.snapshot_download` and the folder is loaded as usual.

`DiffusionPipeline.from_pretrained(folder)` looks the folder's `_class_name` up in the `diffusers` module
itself, where hueflow's classes are not. Diffusers' own way for such pipelines is a custom-pipeline file:
a saved folder holds `pipeline.py` (a few lines that import the class from the hueflow package) and
`_class_name: ["pipeline", "<class>"]`, so `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`
loads it (`add_custom_pipeline_file`; `save_pretrained` writes both). hueflow's own classes read such a
folder directly, with no code executed: `XPipeline.from_pretrained(folder)`, or
`HueflowPipeline.from_pretrained(folder)`, which picks the class the folder names.

For a Hub repo id, Diffusers' generic loader still fails, before it reads `pipeline.py` (issue #6563
above): its `download()` wants each component's module (`pipelines.colorization.modeling`)
in the repo or in diffusers, and raises "decoder/pipelines.colorization.modeling.py as defined in
`model_index.json` does not exist in ORG/NAME and is not a module in 'diffusers/pipelines'.". So a repo
is loaded with hueflow's classes (which download it first), or downloaded first and its folder passed:
`DiffusionPipeline.from_pretrained(snapshot_download("ORG/NAME"), trust_remote_code=True)`.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
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


# -- Diffusers' generic loader: a custom-pipeline file in the saved folder ---------------------------

# The module name Diffusers imports the class from (`_class_name: [CUSTOM_PIPELINE_MODULE, "<class>"]`).
CUSTOM_PIPELINE_MODULE = "pipeline"
CUSTOM_PIPELINE_FILE = f"{CUSTOM_PIPELINE_MODULE}.py"

# Every hueflow pipeline class by name (filled by `HueflowPipeline.__init_subclass__`).
_PIPELINE_CLASSES: dict[str, type[HueflowPipeline]] = {}


def custom_pipeline_source(class_name: str, module: str = "pipelines") -> str:
    """The text of a folder's `pipeline.py`: it imports `class_name` from the installed hueflow package
    (`module`), so the class Diffusers gets is the package's own. `importlib` rather than an import
    statement, because Diffusers scans import statements for missing packages and would then advise
    `pip install pipelines`, an unrelated PyPI project."""
    return f'''"""hueflow's {class_name}, for Diffusers' generic loader on this folder:

    DiffusionPipeline.from_pretrained("<this folder>", trust_remote_code=True)

The code is the hueflow package (`{module}`), which must be importable: run from a clone of the
hueflow repository, or put it on PYTHONPATH. Without Diffusers' loader no code needs trusting, and a Hub
repo id works too: `{module}.{class_name}.from_pretrained(<folder or repo id>)`.
Diffusers 0.42 refuses the Hub repo id of this folder before it reads this file (diffusers issue #6563):
download the repo first (`huggingface_hub.snapshot_download`) and pass the folder.
"""

import importlib

try:
    {class_name} = importlib.import_module("{module}").{class_name}
except (ImportError, AttributeError) as error:
    raise ImportError(
        "This model folder needs the hueflow package, to import "
        "{module}.{class_name}: run from a clone of the hueflow "
        "repository or add it to PYTHONPATH, then load again."
    ) from error
'''


def _import_path(pipeline_class: type) -> str:
    """The module a folder's `pipeline.py` imports `pipeline_class` from: the package face `pipelines`
    for the public pipelines (their module paths may move), else the class's own module."""
    face = sys.modules.get("pipelines")  # looked up, not imported: core imports no system
    if getattr(face, pipeline_class.__name__, None) is pipeline_class:
        return "pipelines"
    return pipeline_class.__module__


def add_custom_pipeline_file(folder: str | os.PathLike) -> Path:
    """Make a saved hueflow pipeline folder loadable by Diffusers' generic loader
    (`DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`): write `pipeline.py`
    (`custom_pipeline_source`) and set `_class_name` in model_index.json to ["pipeline", "<class>"].
    Idempotent; hueflow's own `from_pretrained` reads the folder before and after. Returns the file."""
    folder = Path(folder)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    name = saved_class_name(index)
    pipeline_class = _PIPELINE_CLASSES.get(name)
    if pipeline_class is None:
        raise ValueError(f"{index_path} names {name!r}, which is not a hueflow pipeline class.")
    source = folder / CUSTOM_PIPELINE_FILE
    source.write_text(custom_pipeline_source(name, _import_path(pipeline_class)))
    if index["_class_name"] != [CUSTOM_PIPELINE_MODULE, name]:
        index["_class_name"] = [CUSTOM_PIPELINE_MODULE, name]
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return source


def saved_class_name(config: dict[str, Any]) -> str | None:
    """The pipeline class a model_index.json names: its `_class_name`, a class name or, for a custom
    pipeline, [module, class name]."""
    name = config.get("_class_name")
    if isinstance(name, (list, tuple)) and len(name) == 2:
        return name[1]
    return name


# -- devices -------------------------------------------------------------------------------------


def device_problem(device: str | torch.device) -> str | None:
    """Why torch cannot use `device` on this machine (not a device name, or a GPU it does not have), in
    words that say what to use instead; None when it can."""
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError) as error:
        return f"{str(device)!r} is not a device name ({error}); use cpu or cuda."
    if device.type == "cpu":
        return None
    try:
        torch.empty(1, device=device)  # the cheapest way to ask torch whether it can use the device
    except (AssertionError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"this machine has no usable {device.type} device ({reason}). Use cpu."
    return None


# -- dtypes --------------------------------------------------------------------------------------

HALF_DTYPES = (torch.float16, torch.bfloat16)


def _dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def _requested_dtypes(value: Any) -> list[Any]:
    """The dtypes a `dtype=` / `torch_dtype=` argument asks for (Diffusers also takes one per component)."""
    if value is None:
        return []
    return list(value.values()) if isinstance(value, dict) else [value]


class HueflowPipeline(DiffusionPipeline):
    """Base class of every hueflow pipeline: `from_pretrained` takes a folder or a Hub repo id, and on
    the base class itself loads the class the folder names; dtypes the pipeline cannot run in are
    refused when they are asked for (`to`, `from_pretrained(dtype=...)`) and before a call runs."""

    # The dtypes the pipeline's models may be in. float32 only by default: a pipeline that can run in
    # others casts its inputs to its models' dtype where they enter them, and says so here.
    supported_dtypes: tuple[torch.dtype, ...] = (torch.float32,)
    # Why only `supported_dtypes`, for the error message (a pipeline that refuses half precision says why).
    dtype_note: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _PIPELINE_CLASSES[cls.__name__] = cls

    # -- dtype ----------------------------------------------------------------------------------

    @classmethod
    def check_dtype(cls, dtype: Any) -> None:
        """Raise a ValueError that says what to do when the pipeline's models cannot run in `dtype`."""
        if dtype is None or dtype in cls.supported_dtypes:
            return
        supported = ", ".join(_dtype_name(d) for d in cls.supported_dtypes)
        note = f" {cls.dtype_note}" if cls.dtype_note else ""
        raise ValueError(
            f"{cls.__name__} cannot run in {_dtype_name(dtype)}: it runs in {supported} only.{note} Load "
            "it without dtype= / torch_dtype=, and move it with pipe.to(device) alone."
        )

    def to(self, *args: Any, **kwargs: Any) -> HueflowPipeline:
        # Refused here rather than at the first call, where it would surface as a dtype mismatch deep
        # inside a model; a device torch cannot use here as a sentence, not torch's AssertionError.
        for value in [*args, kwargs.get("dtype"), kwargs.get("device")]:
            if isinstance(value, torch.dtype):
                self.check_dtype(value)
            elif isinstance(value, (str, torch.device)):
                unusable = device_problem(value)
                if unusable:
                    raise ValueError(f"pipe.to({str(value)!r}): {unusable}")
        return super().to(*args, **kwargs)

    def models_dtype(self) -> torch.dtype:
        """The dtype of the pipeline's models, checked: they must share one, and it must be supported
        (components cast one by one, or loaded in another dtype by Diffusers' generic loader, are
        caught here, before a call runs). Call at the start of `__call__`."""
        dtypes = {
            parameter.dtype
            for name in self.components
            if isinstance(module := getattr(self, name, None), torch.nn.Module)
            for parameter in module.parameters()
            if parameter.is_floating_point()
        }
        if len(dtypes) > 1:
            found = ", ".join(sorted(_dtype_name(d) for d in dtypes))
            raise ValueError(
                f"{type(self).__name__}'s models are in different dtypes ({found}): move them together "
                "with pipe.to(dtype)."
            )
        dtype = dtypes.pop() if dtypes else torch.float32
        self.check_dtype(dtype)
        return dtype

    def warn_unused_generator(self, generator: Any, reason: str) -> None:
        """A `generator=` that would change nothing is said so (a UserWarning), not silently ignored."""
        if generator is not None:
            warnings.warn(
                f"generator= has no effect on this {type(self).__name__} call: {reason}.",
                UserWarning,
                stacklevel=4,  # the caller of `__call__` (under torch.no_grad's wrapper)
            )

    # -- loading and saving ---------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> HueflowPipeline:
        """Load a saved pipeline folder or Hub repo id. On `HueflowPipeline` itself, the class the folder's
        model_index.json names (as Diffusers' `AutoPipeline`); on a pipeline class, a folder saved by
        another pipeline class is refused. `dtype=` (or the deprecated `torch_dtype=`) outside the
        class's `supported_dtypes` is refused before anything is read (on `HueflowPipeline` itself, once
        the folder's class is known: before its weights are read)."""
        # The base class runs in no dtype of its own: the class the folder names checks it, so that
        # `HueflowPipeline.from_pretrained(<a PseudoVideoPipeline>, dtype=torch.bfloat16)` loads.
        if cls is not HueflowPipeline:
            for key in ("dtype", "torch_dtype"):
                for dtype in _requested_dtypes(kwargs.get(key)):
                    if isinstance(dtype, torch.dtype):
                        cls.check_dtype(dtype)
        hub_kwargs = {key: kwargs.pop(key) for key in _HUB_KWARGS if key in kwargs}
        folder = resolve_pretrained_path(pretrained_model_name_or_path, **hub_kwargs)
        pipeline_class = cls._class_for(folder)
        if pipeline_class is not cls:
            return pipeline_class.from_pretrained(folder, **kwargs)
        return super().from_pretrained(folder, **kwargs)

    @classmethod
    def _class_for(cls, folder: Path) -> type[HueflowPipeline]:
        """The class that loads `folder`: `cls`, or on the base class the one its model_index.json names."""
        index_path = folder / "model_index.json"
        if not index_path.is_file():
            return cls
        name = saved_class_name(json.loads(index_path.read_text()))
        named = _PIPELINE_CLASSES.get(name)
        if cls is HueflowPipeline:
            if named is None:
                raise PretrainedLoadError(
                    f"{folder} holds a {name!r} pipeline, not a hueflow one: load it with diffusers' "
                    "DiffusionPipeline.from_pretrained."
                )
            return named
        if named is not None and not (issubclass(cls, named) or issubclass(named, cls)):
            raise PretrainedLoadError(
                f"{folder} holds a {name}, not a {cls.__name__}: load it with {name}.from_pretrained(...) "
                "(or HueflowPipeline.from_pretrained(...), which picks the class the folder names)."
            )
        return cls

    @classmethod
    def load_config(cls, *args: Any, **kwargs: Any) -> Any:
        # A folder made loadable by Diffusers' generic loader names its class as [module, class]; for
        # Diffusers that means "import the module's code", which a hueflow class does not need: it is
        # that code. The plain name keeps Diffusers from asking for trust_remote_code here.
        loaded = super().load_config(*args, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        name = config.get("_class_name")
        if isinstance(name, (list, tuple)) and list(name[:1]) == [CUSTOM_PIPELINE_MODULE]:
            config["_class_name"] = saved_class_name(config)
        return loaded

    def save_config(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        # `save_pretrained` writes model_index.json through here before it uploads anything, so a saved or
        # pushed folder always has its custom-pipeline file for Diffusers' generic loader.
        super().save_config(save_directory, **kwargs)
        add_custom_pipeline_file(save_directory)
