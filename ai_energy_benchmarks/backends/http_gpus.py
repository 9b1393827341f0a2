"""Which of this host's GPUs are the HTTP backend's server's: whether the server is on this host, the GPUs named in
the config, or (none named) the port whose listening process, with its descendants, is the server."""

from __future__ import annotations

import logging
import urllib.parse

from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_endpoint import host_is_local
from ai_energy_benchmarks.energy.devices.processes import ServerProcesses, server_processes

logger = logging.getLogger(__name__)


def server_is_local(backend: OpenAIHTTPConfig, base_url: str) -> bool:
    """``backend.server_on_this_host``, or (unset) whether the address of ``base_url`` belongs to this host."""
    if backend.server_on_this_host is not None:
        return backend.server_on_this_host
    return host_is_local(urllib.parse.urlsplit(base_url).hostname or "")


def metered_gpu_ids(on_this_host: bool, backend: OpenAIHTTPConfig) -> list[int] | None:
    """This host's GPUs to meter as the server's when the server is on this host: ``backend.device_ids`` when
    given (or N for ``device: cuda:N``), else every GPU visible here (None) for ``device`` auto or cuda; none
    (an empty list) for ``device: cpu`` or a server on another host."""
    if not on_this_host:
        return []
    device = backend.device
    if device.startswith("cuda:"):
        return [int(device.split(":", 1)[1])]
    if device not in ("auto", "cuda"):
        return []
    if "device_ids" in backend.model_fields_set or device == "cuda":
        return list(backend.device_ids)
    return None


def server_port(base_url: str) -> int:
    """The port the server listens on: the URL's, or the scheme's default (443 for https, else 80)."""
    parts = urllib.parse.urlsplit(base_url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def find_server_processes(base_url: str) -> ServerProcesses:
    """The processes of the server at ``base_url`` on this host: the one listening on its port (see
    :func:`server_port`) and its descendants, such as vLLM's workers (logged)."""
    found = server_processes(server_port(base_url))
    logger.info("the local server's processes: %s", found.found)
    return found
