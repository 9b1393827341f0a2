"""When the HTTP backend sends: the arrival schedule of a run and the jittered waits before retries (s)."""

from __future__ import annotations

import random
from collections.abc import Iterator

#: Longest single wait before a retry (s), whatever Retry-After says.
MAX_RETRY_WAIT_S = 60.0
#: A Retry-After of R seconds is waited as a uniform draw from [R, (1 + RETRY_AFTER_SPREAD) * R].
RETRY_AFTER_SPREAD = 0.5


def retry_delay_s(retry: int, backoff_s: float, retry_after_s: float | None, rng: random.Random) -> float:
    """The wait (s) before retry number ``retry`` (1 for the first), jittered so that clients do not retry in lockstep.

    Without ``Retry-After``: "equal jitter" on the exponential delay d = ``backoff_s`` * 2^(retry - 1), a uniform draw
    from [d / 2, d]. With ``Retry-After: R``: a uniform draw from [R, (1 + :data:`RETRY_AFTER_SPREAD`) R], never
    earlier than the server asked. Both capped at :data:`MAX_RETRY_WAIT_S`.
    """
    if retry_after_s is not None:
        low, high = retry_after_s, retry_after_s * (1.0 + RETRY_AFTER_SPREAD)
    else:
        high = backoff_s * 2.0 ** (retry - 1)
        low = high / 2.0
    return min(rng.uniform(low, high), MAX_RETRY_WAIT_S)


def arrival_offsets(rate: float | None, arrival: str, burstiness: float, seed: int) -> Iterator[float]:
    """Endless send times (s after the start): all 0 without a rate, ``i / rate`` for ``constant``, and for
    ``poisson`` cumulative gamma-distributed gaps (shape ``burstiness``, mean ``1 / rate``) from ``seed``."""
    if rate is None:
        while True:
            yield 0.0
    if arrival == "constant":
        index = 0
        while True:
            yield index / rate
            index += 1
    rng = random.Random(seed)
    offset = 0.0
    scale = 1.0 / (rate * burstiness)
    while True:
        yield offset
        offset += rng.gammavariate(burstiness, scale)


def arrival_schedule(count: int, rate: float | None, arrival: str, burstiness: float, seed: int) -> list[float]:
    """The first ``count`` send times of :func:`arrival_offsets` (s after the start)."""
    offsets = arrival_offsets(rate, arrival, burstiness, seed)
    return [next(offsets) for _ in range(count)]
