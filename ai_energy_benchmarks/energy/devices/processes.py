"""Which processes of this host serve an endpoint: the process listening on its port, and every process below it.

A server on this host (vLLM, SGLang, TGI) runs its model on GPUs the vendor library can name by process: NVML lists
the processes with a context on each GPU. The server's API process is the one listening on the endpoint's TCP port;
its model workers (vLLM's tensor-parallel workers, its engine core) are its child processes. Found from Linux's
``/proc``: the listening sockets' inodes in ``/proc/net/tcp`` and ``tcp6``, the process whose ``/proc/<pid>/fd``
holds one of them, and the parent of every process (``/proc/<pid>/stat``). Only processes this user may inspect are
found (another user's server needs root); elsewhere (no ``/proc``) nothing is found, and the caller says why.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ai_energy_benchmarks.energy.devices.base import DeviceError, GpuLibrary
from ai_energy_benchmarks.energy.devices.visible import Match

logger = logging.getLogger(__name__)

PROC = Path("/proc")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


@dataclass(frozen=True)
class ServerProcesses:
    """The processes serving an endpoint on this host, and how they were found.

    ``pids``: the listening process and its descendants (empty when none could be found). ``found``: one line saying
    how they were found (for ``matched_by``), or why none was.
    """

    port: int
    pids: frozenset[int] = field(default_factory=frozenset)
    listening: frozenset[int] = field(default_factory=frozenset)
    found: str = ""


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            if len(columns) < 10 or columns[3] != _LISTEN:
                continue
            _, _, port_hex = columns[1].rpartition(":")
            if int(port_hex, 16) == port:
                inodes.add(columns[9])
    return inodes


def _pids(proc: Path) -> list[int]:
    try:
        return [int(entry.name) for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def listening_pids(port: int, proc: Path = PROC) -> set[int]:
    """The processes holding a socket that listens on TCP ``port`` (IPv4 or IPv6), among those this user may
    inspect."""
    targets = {f"socket:[{inode}]" for inode in _listening_inodes(port, proc)}
    if not targets:
        return set()
    found: set[int] = set()
    for pid in _pids(proc):
        try:
            descriptors = list((proc / str(pid) / "fd").iterdir())
        except OSError:  # another user's process, or gone
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) in targets:
                    found.add(pid)
                    break
            except OSError:
                continue
    return found


def descendants(pids: set[int], proc: Path = PROC) -> set[int]:
    """Every process below ``pids`` (children, their children, ...), from each process's parent in its ``stat``."""
    children: dict[int, list[int]] = {}
    for pid in _pids(proc):
        try:
            stat = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid ...": the command may hold spaces and parentheses; the last ')' ends it.
        fields = stat.rpartition(")")[2].split()
        if len(fields) >= 2 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(pid)
    below: set[int] = set()
    queue = list(pids)
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in below and child not in pids:
                below.add(child)
                queue.append(child)
    return below


def server_processes(port: int, proc: Path = PROC) -> ServerProcesses:
    """The processes serving TCP ``port`` on this host: the listener(s) and their descendants."""
    if not (proc / "net" / "tcp").exists():
        return ServerProcesses(port, found=f"no /proc/net/tcp on this system to find the process on port {port}")
    listening = listening_pids(port, proc)
    if not listening:
        return ServerProcesses(
            port,
            found=f"no process of this user was found listening on port {port} (a server run by another user or in "
            "a container is not visible from here)",
        )
    below = descendants(listening, proc)
    shown = ", ".join(str(pid) for pid in sorted(listening))
    found = f"PID {shown} listening on port {port}" + (f" and its {len(below)} descendant process(es)" if below else "")
    logger.debug("server processes on port %d: %s (descendants %s)", port, shown, sorted(below))
    return ServerProcesses(port, frozenset(listening | below), frozenset(listening), found)


def server_gpus(library: GpuLibrary, server: ServerProcesses) -> tuple[list[Match], str]:
    """The GPUs of the (open) ``library`` that list one of the server's processes, each with how it was matched;
    when there is none, an empty list and the reason (for the log and ``matched_by``)."""
    if not server.pids:
        return [], server.found
    found: list[Match] = []
    unlisted: list[str] = []
    for index in range(library.count()):
        try:
            pids = library.device(index).process_ids()
        except DeviceError as exc:
            unlisted.append(f"GPU {index}: {exc}")
            continue
        if pids & server.pids:
            shown = ", ".join(str(pid) for pid in sorted(pids & server.pids))
            how = f"server process ({server.found}): PID {shown} on {library.vendor} index {index}"
            found.append(Match(index, how))
    if found:
        return found, ""
    reason = f"{library.vendor} lists none of the server's processes ({server.found}) on any GPU"
    return [], reason + (f"; no process list for {'; '.join(unlisted)}" if unlisted else "")


__all__ = ["ServerProcesses", "descendants", "listening_pids", "server_gpus", "server_processes"]
