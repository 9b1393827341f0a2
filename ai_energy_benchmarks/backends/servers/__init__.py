"""Server profiles of the OpenAI-compatible HTTP backend, one module per server, found by name.

Every module in this package but ``base`` defines ``PROFILE``, a :class:`~.base.ServerProfile`; adding a server is
adding one module (and its tests). ``backend.server`` names one; unset, :func:`detect` recognises the server from
what it answered (``/metrics`` series, ``/v1/models`` ``owned_by``, TGI's ``/info``), falling back to ``openai``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ai_energy_benchmarks.backends.servers.base import ServerFacts, ServerProfile
from ai_energy_benchmarks.exceptions import ConfigError

#: The profile used when no server-specific marker is found.
FALLBACK = "openai"


@cache
def profiles() -> dict[str, ServerProfile]:
    """Every profile in this package, by name."""
    found: dict[str, ServerProfile] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name == "base" or module.name.startswith("_"):
            continue
        profile = getattr(importlib.import_module(f"{__name__}.{module.name}"), "PROFILE", None)
        if isinstance(profile, ServerProfile):
            found[profile.name] = profile
    return dict(sorted(found.items()))


def get_profile(name: str) -> ServerProfile:
    """The profile called ``name``; a :class:`ConfigError` naming ``backend.server`` and the choices otherwise."""
    known = profiles()
    key = name.strip().lower()
    if key not in known:
        raise ConfigError(f"backend.server: unknown server '{name}' (choose {', '.join(known)}, or leave it unset)")
    return known[key]


def detect(facts: ServerFacts) -> tuple[ServerProfile, str]:
    """The profile whose server gave ``facts``, and why; :data:`FALLBACK` when none recognises them."""
    for profile in profiles().values():
        reason = profile.recognise(facts)
        if reason:
            return profile, reason
    return profiles()[FALLBACK], "no server-specific marker (/metrics series, /v1/models owned_by, /info)"


__all__ = ["FALLBACK", "ServerFacts", "ServerProfile", "detect", "get_profile", "profiles"]
