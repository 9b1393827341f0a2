"""The `backend` section: the model of its `type`, keys of the other backend type, null strings.

Everything here drives the real config code (no mocks): values are checked as a user would see them, either as
resolved config values or as the one-line message and exit code of the `ai-energy-benchmark` command.
"""

from __future__ import annotations

from typing import Any

import pytest
from config_helpers import _isolated  # noqa: F401  # the autouse fixture: an empty working directory
from pydantic import ValidationError

from ai_energy_benchmarks.config.backend import BackendConfig as BackendConfigBase
from ai_energy_benchmarks.config.loader import build_config
from ai_energy_benchmarks.config.schema import BackendConfig, BenchmarkConfig
from ai_energy_benchmarks.exceptions import ConfigError


def test_null_strings_unset_only_optional_keys() -> None:
    """'None' from a command line unsets an optional key, but is kept as text where a string is required."""
    config = BenchmarkConfig(name="none", backend={"model": "m", "device_map": "None"})
    assert config.name == "none"
    assert config.backend.device_map is None


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"type": "pytorch", "model": "m", "concurrency": 4}, "concurrency applies to backend type 'vllm' only"),
        (
            {"type": "vllm", "model": "m", "endpoint": "http://h:8000/v1", "no_weights": True},
            "no_weights applies to backend type 'pytorch' only",
        ),
    ],
)
def test_options_of_the_other_backend_are_rejected(backend: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BackendConfig(**backend)


def _config_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        build_config(data, "python")
    return str(info.value)


def test_each_backend_type_has_its_own_model() -> None:
    local = BenchmarkConfig.model_validate({"backend": {"model": "m", "num_threads": "4"}})
    server = BenchmarkConfig.model_validate(
        {"backend": {"type": "vllm", "model": "m", "endpoint": "http://h:8000/v1", "server": "sglang"}}
    )
    assert local.backend.type == "pytorch" and local.backend.num_threads == 4  # type: ignore[attr-defined]
    assert server.backend.server == "sglang"  # type: ignore[attr-defined]
    assert not hasattr(local.backend, "concurrency") and not hasattr(server.backend, "no_weights")
    # BackendConfig itself builds the model its type names, by keyword or from a mapping.
    assert type(BackendConfig(type="vllm", model="m", endpoint="http://h:1")) is type(server.backend)
    assert type(BackendConfigBase.model_validate({"model": "m"})) is type(local.backend)
    # A config switched to the other type by assignment is validated as that type.
    local.backend = {"type": "vllm", "model": "m", "endpoint": "http://h:1"}  # type: ignore[assignment]
    assert type(local.backend) is type(server.backend)


def test_a_typo_is_matched_against_the_keys_of_its_backend_type() -> None:
    message = _config_error({"backend": {"type": "vllm", "model": "m", "endpoint": "http://h:1", "concurency": 3}})
    assert message == "python: backend.concurency: unknown key (did you mean 'concurrency'?)"
    message = _config_error({"backend": {"model": "m", "num_thread": 3}})
    assert message == "python: backend.num_thread: unknown key (did you mean 'num_threads'?)"


def test_keys_of_the_other_type_at_their_default_are_accepted_and_dropped() -> None:
    config = BenchmarkConfig.model_validate(
        {
            "backend": {
                "type": "vllm",
                "model": "m",
                "endpoint": "http://h:1",
                "no_weights": "false",
                "torch_dtype": "auto",
            }
        }
    )
    assert "no_weights" not in config.to_public_dict()["backend"]
    local = BenchmarkConfig.model_validate(
        {"backend": {"model": "m", "concurrency": 1, "endpoint": "http://h:1", "api_key": "k"}}
    )
    assert {"concurrency", "endpoint", "api_key"}.isdisjoint(local.to_public_dict()["backend"])


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"model": "m", "num_threads": 0}, "backend.num_threads: input should be greater than or equal to 1, got 0"),
        ({"type": "vllm", "model": "m"}, "backend: endpoint is required when type is 'vllm'"),
        ({"type": 3, "model": "m"}, "backend.type: expected 'pytorch' or 'vllm', got 3"),
        ({"type": "vlm", "model": "m"}, "backend.type: expected 'pytorch' or 'vllm', got 'vlm'"),
    ],
)
def test_bad_backend_values_are_one_line(backend: dict[str, Any], message: str) -> None:
    assert _config_error({"backend": backend}) == f"python: {message}"
