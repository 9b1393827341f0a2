"""One place that decides what is a secret and hides it from everything printed or written.

Secrets are the values of secret-named keys (``api_key``, ``token``, ``password``, ``secret``, ...) and the
credentials inside URLs: the user information (``http://user:KEY@host``) and every query value
(``?api_key=KEY``). The config, the overrides, error messages, reports, the HTML page, the CSV row and the sweep
summaries all go through these helpers; the run itself still sends the real key and URL to the server.

    >>> redact_url("http://alice:s3cret@host:8000/v1?token=abc")
    'http://***redacted***@host:8000/v1?token=***redacted***'
    >>> redact_override("backend.api_key=sk-123")
    'backend.api_key=***redacted***'
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

#: What a secret is replaced with.
REDACTED = "***redacted***"

#: A key whose last dotted component (any case, ``-`` read as ``_``) names a secret: ``api_key``, ``openai_api_key``,
#: ``token``, ``hf_token``, ``password``, ``client_secret``, ... (but not ``pad_token`` or ``max_new_tokens``).
_SECRET_KEY = re.compile(
    r"(?:[a-z0-9]+_)*api_?key|apikey|(?:[a-z0-9]+_)*(?:password|passwd|secret|secret_key|access_key)"
    r"|(?:access_|auth_|api_|hf_|bearer_|refresh_|session_)?token|authorization|credentials?"
)
#: A URL in free text: a scheme, ``://`` and everything up to a space, a quote or a bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`)]+")
#: ``user:password@`` without a scheme in front (``alice:KEY@host:8000/v1``).
_USERINFO_IN_TEXT = re.compile(r"(?<![\w/@*])[\w.%~+-]+:[^\s@/'\"]+@(?=[\w\[])")
#: ``secret_key=value`` in free text (an override, a message).
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>\s*=\s*)(?P<quote>['\"]?)(?P<value>[^\s'\",;&]+)"
)


def is_secret_key(key: str) -> bool:
    """Whether the config key (or dotted key path) ``key`` holds a secret, e.g. ``backend.api_key``."""
    name = str(key).rsplit(".", 1)[-1].strip().lstrip("+").lower().replace("-", "_")
    return _SECRET_KEY.fullmatch(name) is not None


def url_has_credentials(url: str) -> bool:
    """Whether ``url`` carries a user name, a password or a query (which may hold a key)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "@" in url or "?" in url
    return "@" in parts.netloc or bool(parts.query)


def redact_url(url: str) -> str:
    """``url`` with its user information and every query value replaced by :data:`REDACTED`; otherwise unchanged.

    ``http://host:8000/v1`` stays as it is; ``http://u:KEY@host/v1?api_key=K`` becomes
    ``http://***redacted***@host/v1?api_key=***redacted***``. A URL that cannot be parsed is replaced whole when it
    may hold a secret.
    """
    if not url_has_credentials(url):
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        names = [pair.partition("=")[0] for pair in re.split(r"[&;]", query) if pair]
        query = "&".join(f"{name}={REDACTED}" for name in names)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_without_credentials(url: str) -> str:
    """``url`` with no user information, query or fragment at all (a server address safe to show)."""
    try:
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        host = parts.hostname or ""
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Free text (a message, an override, a label) with URL credentials, ``secret_key=value`` values and every
    string of ``secrets`` replaced by :data:`REDACTED`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    text = _USERINFO_IN_TEXT.sub(REDACTED + "@", text)

    def assignment(match: re.Match[str]) -> str:
        if not is_secret_key(match.group("key")) or match.group("value") == REDACTED:
            return match.group(0)
        return f"{match.group('key')}{match.group('sep')}{match.group('quote')}{REDACTED}"

    return _SECRET_ASSIGNMENT.sub(assignment, text)


def redact_value(key: str, value: Any) -> Any:
    """The value of config key ``key`` as it may be shown: hidden for a secret key, URL credentials hidden in
    strings, containers redacted recursively."""
    if is_secret_key(key) and value is not None and not isinstance(value, (Mapping, list, tuple)):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_data(value)
    if isinstance(value, (list, tuple)):
        return [redact_value(key, item) for item in value]
    return value


def redact_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` (a config as plain data) with every secret-named key's value and URL credential hidden."""
    return {str(key): redact_value(str(key), value) for key, value in data.items()}


def redact_override(text: str) -> str:
    """A ``key=value`` override as it may be shown: ``backend.api_key=sk-..`` -> ``backend.api_key=***redacted***``."""
    key, sep, value = text.partition("=")
    if not sep:
        return redact_text(text)
    if is_secret_key(key):
        return f"{key}={REDACTED}"
    return f"{key}={redact_text(value)}"


__all__ = [
    "REDACTED",
    "is_secret_key",
    "redact_data",
    "redact_override",
    "redact_text",
    "redact_url",
    "redact_value",
    "url_has_credentials",
    "url_without_credentials",
]
