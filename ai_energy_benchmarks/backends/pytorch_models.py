"""Where a local PyTorch model comes from: a packaged architecture (``packaged:NAME``), a hub id or a local folder,
and the check that a local folder holds weights (a file listing, before anything loads)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ai_energy_benchmarks.exceptions import ConfigError

PACKAGED_PREFIX = "packaged:"
#: The packaged tokenizer used for packaged architectures that ship none.
DEFAULT_TOKENIZER = "tiny-llama"


def packaged_models_dir() -> Path:
    """Directory of the architectures shipped with the package (config.json only, no weights)."""
    return Path(str(resources.files("ai_energy_benchmarks") / "data" / "models"))


def packaged_models() -> list[str]:
    """Names usable as ``backend.model: packaged:NAME``."""
    return sorted(p.name for p in packaged_models_dir().iterdir() if (p / "config.json").is_file())


def resolve_model_source(model: str) -> tuple[str, bool]:
    """The path or hub id to load, and whether it is a packaged architecture."""
    if model.startswith(PACKAGED_PREFIX):
        name = model[len(PACKAGED_PREFIX) :]
        path = packaged_models_dir() / name
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"backend.model: no packaged architecture '{name}' (available: {', '.join(packaged_models())})"
            )
        return str(path), True
    return model, False


#: Files whose presence means a local model folder holds weights transformers can load.
_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json")


def check_weights_present(model: str, source: str, packaged: bool) -> None:
    """Refuse, before anything loads, a local model folder without weights (a file listing; nothing is read).

    Packaged architectures ship a config.json only; a hub id is not checked (its files are fetched or cached)."""
    folder = Path(source)
    if not (packaged or folder.is_dir()):
        return
    if any(next(folder.glob(pattern), None) is not None for pattern in _WEIGHT_PATTERNS):
        return
    what = "is an architecture shipped without weights" if packaged else f"has no weights in {folder}"
    raise ConfigError(
        f"backend.model: '{model}' {what} (no *.safetensors or pytorch_model*.bin): set backend.no_weights=true "
        "to run it with random weights"
    )
