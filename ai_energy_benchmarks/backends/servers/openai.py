"""The plain OpenAI API (api.openai.com, or any server the other profiles do not recognise): no request extension,
no Prometheus metrics, readiness from ``GET /v1/models``."""

from __future__ import annotations

from ai_energy_benchmarks.backends.servers.base import ServerProfile

PROFILE = ServerProfile(
    name="openai",
    title="plain OpenAI API",
    extensions=frozenset(),
    health_path=None,
    version_path=None,
    metrics=None,
    sources=("platform.openai.com/docs/api-reference/chat/create",),
)
