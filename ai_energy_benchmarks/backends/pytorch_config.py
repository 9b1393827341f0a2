"""The ``backend`` settings of ``type: pytorch`` (a model run in this process with PyTorch + transformers)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from ai_energy_benchmarks.config.backend import BackendConfig


class PyTorchConfig(BackendConfig):
    """`type: pytorch`: the model runs in this process with PyTorch and transformers (`endpoint` and `api_key`,
    when present, are ignored, so one file can switch backends)."""

    ignored_keys: ClassVar[frozenset[str]] = frozenset({"endpoint", "api_key"})

    type: Literal["pytorch"] = Field("pytorch", description="`pytorch`.")
    torch_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="Weights dtype; `auto` is float32 on CPU and the model's own on GPU.",
    )
    no_weights: bool = Field(
        False,
        description="Initialise random weights from the model's config (fixed seed) instead of loading them.",
    )
    device_map: str | dict[str, Any] | None = Field(
        None,
        description="transformers/accelerate device map: `auto`, `balanced`, `sequential` or an explicit map.",
    )
    max_memory: dict[str, str] | None = Field(
        None, description="Per-device memory cap for `device_map`, e.g. `{0: 20GiB, cpu: 60GiB}`."
    )
    load_in_8bit: bool = Field(False, description="Quantise weights to 8 bits with bitsandbytes (GPU only).")
    load_in_4bit: bool = Field(False, description="Quantise weights to 4 bits with bitsandbytes (GPU only).")
    attn_implementation: str | None = Field(
        None, description="Attention kernel passed to transformers (`eager`, `sdpa`, `flash_attention_2`)."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub to run. Off unless asked.")
    num_threads: int | None = Field(
        None,
        ge=1,
        description="PyTorch intra-op CPU threads; unset: the cores that are free, calibrated on the loaded model "
        "(the fewest threads within 10% of the fastest).",
    )

    @model_validator(mode="after")
    def _check_quantisation(self) -> PyTorchConfig:
        if self.load_in_8bit and self.load_in_4bit:
            raise ValueError("load_in_8bit and load_in_4bit cannot both be true")
        return self


__all__ = ["PyTorchConfig"]
