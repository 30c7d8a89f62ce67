"""Text-to-video with a real model: a diffusers pipeline (Wan 2.x, LTX-Video, ...) from a local directory.

The directory is what ``pipeline.save_pretrained(dir)`` writes, or a model repository downloaded by the
operator beforehand (``model_index.json`` and one folder per component). Nothing is fetched at run time
(``local_files_only``)::

    GOVERNANCE_GENERATOR=diffusers GOVERNANCE_GENERATOR_DIR=/models/Wan2.1-T2V-1.3B-Diffusers make run

The pipeline loads on the first request, onto CUDA in bfloat16 when a GPU is visible, else the CPU in
float32 (usable for tiny test models only). Each request is rendered at the nearest size and frame count
the model accepts (Wan: sides a multiple of 16 and 4k + 1 frames; LTX: 32 and 8k + 1), then cropped
and trimmed to the spec, so the gate always receives exactly what it asked for. The seed fixes the
initial noise, so a spec gives the same video on the same hardware and library versions.

Text-to-video models take no face: a generation that names a consented likeness gets the prompt only
(the face crops in the spec are not used), and the gate's scan still checks every face in the output.
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from generator.base import TRAINED_ALGORITHMIC_MEDIA, GenerationSpec, GeneratorError, GeneratorInfo
from media.video import Clip

__all__ = ["DiffusersGenerator"]

DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 5.0
DEFAULT_NEGATIVE = "blurry, low quality, distorted, watermark, text"


class DiffusersGenerator:
    """A diffusers text-to-video pipeline behind the :class:`~generator.base.VideoGenerator` interface.

    ``model_dir`` must hold ``model_index.json``; ``device`` (``"cuda"``, ``"cpu"``; default: CUDA when
    available) and ``dtype`` (``"bfloat16"``, ``"float16"``, ``"float32"``; default: bfloat16 on CUDA,
    float32 on CPU) choose where it runs; ``steps`` and ``guidance`` are the sampler's. Calls are
    serialised (a pipeline is not thread-safe); run one generator per GPU.
    """

    def __init__(self, model_dir: str | Path, *, device: str | None = None, dtype: str | None = None,
                 steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                 negative_prompt: str = DEFAULT_NEGATIVE) -> None:
        self.model_dir = Path(model_dir)
        index = self.model_dir / "model_index.json"
        try:
            meta = json.loads(index.read_text())
        except FileNotFoundError as e:
            raise GeneratorError(f"no diffusers model in {self.model_dir}: model_index.json is missing (the "
                                 "folder pipeline.save_pretrained writes, or a downloaded model repository)") from e
        except (OSError, ValueError) as e:
            raise GeneratorError(f"cannot read {index}: {e}") from e
        if not isinstance(meta, dict) or not isinstance(meta.get("_class_name"), str):
            raise GeneratorError(f"{index} does not name a pipeline class (_class_name)")
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 500:
            raise GeneratorError(f"steps must be a whole number from 1 to 500, got {steps!r}")
        if not (isinstance(guidance, int | float) and math.isfinite(guidance) and 0 <= guidance <= 50):
            raise GeneratorError(f"guidance must be a number from 0 to 50, got {guidance!r}")
        if dtype not in (None, "bfloat16", "float16", "float32"):
            raise GeneratorError(f"dtype must be bfloat16, float16 or float32, got {dtype!r}")
        if device not in (None, "cuda", "cpu") and not (isinstance(device, str) and device.startswith("cuda:")):
            raise GeneratorError(f"device must be 'cuda', 'cuda:N' or 'cpu', got {device!r}")
        self.pipeline_class: str = meta["_class_name"]
        self.steps, self.guidance, self.negative_prompt = steps, float(guidance), negative_prompt
        self._device, self._dtype = device, dtype
        self._pipe: Any = None
        self._lock = threading.Lock()
        self.info = GeneratorInfo(
            name=f"diffusers/{self.pipeline_class}",
            version=f"{_diffusers_version()} {self.model_dir.name}",
            learned_weights=True,
            description=f"{self.pipeline_class} from {self.model_dir.name} ({steps} steps, guidance {guidance:g})",
            digital_source_type=TRAINED_ALGORITHMIC_MEDIA,
        )

    def __repr__(self) -> str:
        return f"DiffusersGenerator({str(self.model_dir)!r}, pipeline={self.pipeline_class})"

    # -- loading ------------------------------------------------------------------------------------------
    def _load(self) -> Any:
        if self._pipe is not None:
            return self._pipe
        try:
            import torch
            from diffusers import DiffusionPipeline
        except ImportError as e:
            raise GeneratorError("the diffusers generator needs torch, diffusers, transformers and accelerate "
                                 "(pip install -e '.[diffusers]')") from e
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype_name = self._dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        try:
            dtype = getattr(torch, dtype_name)
            with warnings.catch_warnings():
                # diffusers >= 0.42 renames torch_dtype to dtype with a FutureWarning; the versions this project
                # supports (>= 0.35) all take torch_dtype, so the warning says nothing here (and must not turn
                # the real reason a model does not load into a warning raised as an error)
                warnings.filterwarnings("ignore", message="`torch_dtype` is deprecated", category=FutureWarning)
                pipe = DiffusionPipeline.from_pretrained(str(self.model_dir), local_files_only=True,
                                                         torch_dtype=dtype)
            pipe.to(device)
        except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
            raise GeneratorError(f"could not load the diffusers pipeline: {e} "
                                 f"(model directory {self.model_dir})") from e
        pipe.set_progress_bar_config(disable=True)
        self._pipe, self._torch, self._run_device = pipe, torch, device
        return pipe

    # -- generating ---------------------------------------------------------------------------------------
    def generate(self, spec: GenerationSpec) -> Clip:
        if not isinstance(spec, GenerationSpec):
            raise GeneratorError(f"expected a GenerationSpec, got {type(spec).__name__}")
        with self._lock:
            pipe = self._load()
            spatial, temporal = _granularity(pipe)
            height, width = _round_up(spec.height, spatial), _round_up(spec.width, spatial)
            frames = temporal * math.ceil((spec.frame_count - 1) / temporal) + 1
            kwargs: dict[str, Any] = {
                "prompt": spec.prompt, "height": height, "width": width, "num_frames": frames,
                "num_inference_steps": self.steps, "guidance_scale": self.guidance, "output_type": "np",
                "generator": self._torch.Generator(device=self._run_device).manual_seed(spec.seed),
            }
            if self.guidance > 1 and self.negative_prompt:
                kwargs["negative_prompt"] = self.negative_prompt
            try:
                out = pipe(**kwargs)
            except (RuntimeError, ValueError, TypeError) as e:  # out of memory, a size the model refuses
                raise GeneratorError(f"{self.pipeline_class} failed on {width}x{height}, {frames} frames: {e}") from e
        video = np.asarray(out.frames[0])
        if video.ndim != 4 or video.shape[-1] != 3:
            raise GeneratorError(f"{self.pipeline_class} returned frames of shape {video.shape}, not (T, H, W, 3)")
        if video.dtype != np.uint8:
            video = np.clip(np.rint(video.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
        top, left = (video.shape[1] - spec.height) // 2, (video.shape[2] - spec.width) // 2
        video = video[:spec.frame_count, top:top + spec.height, left:left + spec.width]
        if video.shape[0] < spec.frame_count:  # a model that returned fewer frames than asked: hold the last
            video = np.concatenate([video, np.repeat(video[-1:], spec.frame_count - video.shape[0], axis=0)])
        return Clip(frames=np.ascontiguousarray(video), fps=spec.fps)


def _granularity(pipe: Any) -> tuple[int, int]:
    """(pixels, frames) the pipeline's sizes must be multiples of (frames: of the temporal factor, plus 1)."""
    def factor(*names: str, default: int) -> int:  # Wan says vae_scale_factor_*, LTX-Video vae_*_compression_ratio
        for name in names:
            value = getattr(pipe, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return default

    spatial = factor("vae_scale_factor_spatial", "vae_spatial_compression_ratio", default=8)
    transformer = getattr(pipe, "transformer", None)
    patch = getattr(getattr(transformer, "config", None), "patch_size", None)
    if isinstance(patch, list | tuple) and len(patch) == 3:
        spatial *= int(patch[1])
    elif isinstance(patch, int):
        spatial *= patch
    temporal = factor("vae_scale_factor_temporal", "vae_temporal_compression_ratio", default=4)
    return spatial, temporal


def _round_up(value: int, step: int) -> int:
    return step * math.ceil(value / step)


def _diffusers_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"diffusers {version('diffusers')}"
    except PackageNotFoundError:
        return "diffusers (not installed)"
