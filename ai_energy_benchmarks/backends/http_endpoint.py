"""Where the HTTP backend connects and how: the endpoint URL, whether the server is on this host, the API and the key.

The API key (``backend.api_key`` or ``OPENAI_API_KEY``) is sent as a bearer token and never logged or reported.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import urllib.parse

from ai_energy_benchmarks.config.redact import redact_text, url_without_credentials
from ai_energy_benchmarks.exceptions import ConfigError

logger = logging.getLogger(__name__)

API_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


def normalize_endpoint(endpoint: str) -> str:
    """The server's base URL without a trailing ``/v1`` (the suffix, not characters) and without a final slash.

    ``http://h:8000/v1`` and ``http://h:8000/v1/`` and ``http://h:8000`` all give ``http://h:8000``; a path prefix
    before ``/v1`` (a gateway) is kept. A URL naming an API route (``.../v1/completions``) is rejected.
    """
    text = endpoint.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"backend.endpoint: scheme must be http or https, got '{parts.scheme}'")
    if not parts.hostname:
        raise ConfigError(f"backend.endpoint: no host in '{redact_url(endpoint)}'")
    if parts.query or parts.fragment:
        raise ConfigError("backend.endpoint: give the server's base URL without a query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(("/completions", "/models", "/health")):
        raise ConfigError(
            f"backend.endpoint: '{redact_url(endpoint)}' names an API route; give the server's base URL "
            "(e.g. http://localhost:8000/v1) and choose the route with backend.api"
        )
    if path == "/v1" or path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def redact_url(url: str) -> str:
    """``url`` without user name, password, query or fragment (safe to log and report)."""
    return url_without_credentials(url)


def host_is_local(host: str) -> bool:
    """Whether ``host`` resolves to this machine: a loopback address or one bound to a local interface.

    An address is local when a socket can be bound to it (nothing is sent). A server in another network
    namespace on the same machine (a container on a bridge network) counts as not local.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return False
    for family, _, _, _, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.is_loopback:
            return True
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((address, 0))
            return True
        except OSError:
            continue
    return False


def resolve_api(configured: str, chat_template: bool | str) -> tuple[str, str]:
    """``backend.api`` as used, and why: ``auto`` is chat (0.0.4 always sent chat messages) unless
    ``scenario.chat_template`` is false (plain text, the completions endpoint)."""
    if configured != "auto":
        return configured, "backend.api"
    if chat_template is False:
        return "completions", "backend.api auto: scenario.chat_template is false (plain text)"
    return "chat", "backend.api auto: chat messages through the server's chat template, as 0.0.4 sent"


def resolve_api_key(configured: str | None) -> tuple[str | None, str]:
    """The API key and where it came from (``config``, ``env:OPENAI_API_KEY`` or ``none``)."""
    if configured:
        return configured, "config"
    env = os.environ.get("OPENAI_API_KEY")
    if env:
        return env, "env:OPENAI_API_KEY"
    return None, "none"


def endpoint_credentials(base_url: str, configured_key: str | None) -> tuple[str | None, str]:
    """The API key to send and where it came from (see :func:`resolve_api_key`): none (``endpoint``) when
    ``base_url`` carries credentials (user:password@host), which are sent instead.

    Raises:
        ConfigError: ``base_url`` carries credentials and ``backend.api_key`` is set too.
    """
    api_key, source = resolve_api_key(configured_key)
    if "@" not in urllib.parse.urlsplit(base_url).netloc:
        return api_key, source
    # Both would go in the Authorization header (Basic from the URL, Bearer from the key).
    if source == "config":
        raise ConfigError(
            "backend.endpoint carries credentials (user:password@host) and backend.api_key is set: both "
            "would be sent as the Authorization header; give one of them"
        )
    if api_key:
        logger.info("the endpoint carries credentials: OPENAI_API_KEY from the environment is not sent")
    return None, "endpoint"


def request_headers(api_key: str | None) -> dict[str, str]:
    """Every request's headers: JSON, and the API key as a bearer token when there is one."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def redact_secrets(text: str, api_key: str | None, url_password: str | None) -> str:
    """``text`` without the API key (``***``) and without the endpoint URL's password or other credentials (see
    :func:`config.redact.redact_text`)."""
    if api_key and api_key in text:
        text = text.replace(api_key, "***")
    return redact_text(text, (url_password or "",))
