"""Where and how the PyTorch backend's model is placed: the device, the dtype, bitsandbytes quantisation, the
device map and memory limits that keep it on ``backend.device_ids``, and random weights dispatched by such a map.

``torch`` and ``transformers`` come in as arguments (the backend imports them when it loads); ``accelerate`` and
``bitsandbytes`` are imported only where they are needed.
"""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.backends.pytorch_config import PyTorchConfig
from ai_energy_benchmarks.exceptions import BackendError, ConfigError


def resolve_device(backend: PyTorchConfig, torch: Any) -> str:
    """The device to run on (``cpu``, ``cuda:N``) for ``backend.device`` and ``backend.device_ids``."""
    wanted = backend.device
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BackendError(f"backend.device is '{backend.device}' but no CUDA GPU is available")
        count = torch.cuda.device_count()
        bad = [i for i in backend.device_ids if i >= count]
        if bad:
            raise ConfigError(
                f"backend.device_ids: GPU {bad[0]} does not exist (this machine has {count} CUDA device(s))"
            )
        if wanted == "cuda":
            wanted = f"cuda:{backend.device_ids[0]}" if backend.device_ids else "cuda:0"
    return wanted


def torch_dtype(name: str, device: str, torch: Any) -> Any:
    """``backend.torch_dtype`` as torch's dtype (``auto``: float32 on the CPU, the checkpoint's own on a GPU)."""
    if name == "auto":
        return torch.float32 if device == "cpu" else "auto"
    return getattr(torch, name)


def quantization_config(backend: PyTorchConfig, device: str) -> Any:
    """transformers' ``BitsAndBytesConfig`` for ``load_in_8bit``/``load_in_4bit``, or None when neither is set."""
    if not (backend.load_in_8bit or backend.load_in_4bit):
        return None
    if not device.startswith("cuda"):
        raise ConfigError("backend.load_in_8bit/load_in_4bit: bitsandbytes quantisation needs a CUDA GPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError(
            "backend.load_in_8bit/load_in_4bit: bitsandbytes is not installed: "
            "pip install 'ai-energy-benchmarks[quantization]'"
        ) from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_8bit=backend.load_in_8bit, load_in_4bit=backend.load_in_4bit)


def placement(backend: PyTorchConfig, device: str, torch: Any) -> dict[str, Any]:
    """device_map / max_memory arguments that keep the model on ``backend.device_ids`` only."""
    max_memory = {_memory_key(k): v for k, v in (backend.max_memory or {}).items()} or None
    if backend.device_map is None:
        if device.startswith("cuda") and len(backend.device_ids) > 1:
            return {"device_map": "auto", "max_memory": max_memory or _gpu_memory(torch, backend.device_ids)}
        return {}
    if isinstance(backend.device_map, dict):
        gpus = {int(v) for v in backend.device_map.values() if isinstance(v, int) or str(v).isdigit()}
        gpus |= {int(str(v).split(":")[1]) for v in backend.device_map.values() if str(v).startswith("cuda:")}
        outside = sorted(gpus - set(backend.device_ids))
        if outside and device.startswith("cuda"):
            raise ConfigError(
                f"backend.device_map places modules on GPU {outside[0]}, which is not in backend.device_ids "
                f"{backend.device_ids}"
            )
        return {"device_map": backend.device_map, "max_memory": max_memory}
    if device.startswith("cuda") and max_memory is None:
        max_memory = _gpu_memory(torch, backend.device_ids)
    return {"device_map": backend.device_map, "max_memory": max_memory}


def random_model(
    transformers: Any, torch: Any, device: str, model_config: Any, common: dict[str, Any], placed: dict[str, Any]
) -> Any:
    """Random weights from the config: built on ``device``, or on the CPU then dispatched by the map in ``placed``
    (:func:`placement`'s arguments)."""
    if not placed:
        with torch.device(device):
            return transformers.AutoModelForCausalLM.from_config(model_config, **common)
    from accelerate import dispatch_model, infer_auto_device_map

    model = transformers.AutoModelForCausalLM.from_config(model_config, **common)
    device_map = placed["device_map"]
    if isinstance(device_map, str):
        if device_map not in ("auto", "balanced", "balanced_low_0", "sequential"):
            raise ConfigError(f"backend.device_map: unknown strategy '{device_map}'")
        device_map = infer_auto_device_map(
            model,
            max_memory=placed.get("max_memory"),
            no_split_module_classes=getattr(model, "_no_split_modules", None) or [],
        )
    model = dispatch_model(model, device_map=device_map)
    model.hf_device_map = device_map
    return model


def _gpu_memory(torch: Any, device_ids: list[int]) -> dict[int | str, str]:
    """A max_memory map that allows only ``device_ids`` (90% of each GPU's memory) and no CPU offload."""
    return {
        index: f"{int(torch.cuda.get_device_properties(index).total_memory * 0.9) // 2**20}MiB" for index in device_ids
    }


def _memory_key(key: str) -> int | str:
    return int(key) if key.isdigit() else key
