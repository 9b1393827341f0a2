"""Steady hardware: wait for the GPUs to settle before measuring, cool down between repetitions, and say which
measured windows the GPUs throttled in (the result's ``hardware`` block).

Everything is read from what the GPU meters' pollers already sample (:attr:`GpuMeter.conditions`,
:mod:`ai_energy_benchmarks.energy.gpu_conditions`): no extra device calls, and every wait runs outside the measured
windows. A GPU is *steady* when, over the last ``steady_hardware.window_s``, its temperature varied by at most
``temperature_tolerance_c`` and its power by at most ``power_tolerance_w``. A wait that times out (``max_wait_s``)
does not stop the run: it is recorded (``reached: false``) and warned about. Times are seconds on the meters' clock
(a simulated clock in tests, which the waits then advance instead of sleeping), temperatures °C, power W.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ai_energy_benchmarks import interrupts
from ai_energy_benchmarks.config.steady import SteadyHardwareConfig
from ai_energy_benchmarks.datasets.loader import IN_RESULT_WARNINGS
from ai_energy_benchmarks.energy.base import EnergyMeter, WindowMeasurement
from ai_energy_benchmarks.energy.gpu import GpuMeter
from ai_energy_benchmarks.energy.gpu_conditions import (
    THROTTLED,
    UNKNOWN,
    ConditionRecord,
    ConditionSample,
    Tally,
    describe,
)
from ai_energy_benchmarks.passes import sleep_checked

logger = logging.getLogger(__name__)

#: How often (s on the meters' clock) a wait looks at the latest samples.
CHECK_INTERVAL_S = 0.25


def _sleeper(clock: Any) -> Callable[[float], None]:
    """How to let ``seconds`` pass on ``clock``: a simulated clock is advanced, the system clock slept on."""
    advance = getattr(clock, "advance", None)
    return advance if callable(advance) else sleep_checked


def _spread(values: list[float]) -> float:
    return max(values) - min(values) if len(values) > 1 else 0.0


class SteadyHardware:
    """The waits and throttle report of one run over its GPU meters (none: nothing to wait on, no block)."""

    def __init__(self, config: SteadyHardwareConfig, meters: Sequence[EnergyMeter]) -> None:
        self.config = config
        self._gpu_meters = [meter for meter in meters if isinstance(meter, GpuMeter)]
        self._records: list[ConditionRecord] = [meter.conditions for meter in self._gpu_meters]
        self.enabled = config.enabled is True or (config.enabled == "auto" and bool(self._records))
        self.waits: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self._baseline_c: dict[tuple[int, int], float] = {}
        if config.enabled is True and not self._records:
            self._warn("steady_hardware.enabled is true but no GPU meter (nvml, amdsmi) is active: nothing to wait on")

    @property
    def active(self) -> bool:
        """Whether this run waits (enabled, with GPU meters to read)."""
        return self.enabled and bool(self._records)

    def _warn(self, message: str) -> None:
        logger.warning(message, extra=IN_RESULT_WARNINGS)
        self.warnings.append(message)

    def _now_s(self) -> float:
        return self._records[0].now_s()

    def _latest(self) -> dict[tuple[int, int], ConditionSample]:
        latest: dict[tuple[int, int], ConditionSample] = {}
        for m, record in enumerate(self._records):
            for sample in record.samples(start_s=self._now_s() - 5 * CHECK_INTERVAL_S - self.config.window_s):
                latest[(m, sample.gpu)] = sample
        return latest

    def _is_steady(self, now_s: float) -> bool:
        """Every sampled GPU's temperature and power stayed within tolerance over the last ``window_s``."""
        seen = False
        for record in self._records:
            for gpu in record.gpus():
                samples = record.samples(gpu, now_s - self.config.window_s, now_s)
                temperatures = [s.temperature_c for s in samples if s.temperature_c is not None]
                powers = [s.power_w for s in samples if s.power_w is not None]
                if len(temperatures) < 2 and len(powers) < 2:
                    return False
                seen = True
                if _spread(temperatures) > self.config.temperature_tolerance_c:
                    return False
                if _spread(powers) > self.config.power_tolerance_w:
                    return False
        return seen

    def _wait(self, done: Callable[[float, float], bool], at_least_s: float, at_most_s: float) -> tuple[float, bool]:
        """Let time pass until ``done(now_s, waited_s)`` (checked every CHECK_INTERVAL_S, from ``at_least_s`` on)
        or ``at_most_s``; return (waited s, whether ``done`` held)."""
        sleep = _sleeper(self._records[0].clock)
        start_s = self._now_s()
        while True:
            now_s = self._now_s()
            waited_s = now_s - start_s
            if waited_s >= at_least_s and done(now_s, waited_s):
                return waited_s, True
            if waited_s >= at_most_s:
                return waited_s, False
            sleep(min(CHECK_INTERVAL_S, max(at_most_s - waited_s, 1e-3)))
            interrupts.check()

    def _record_wait(self, kind: str, before: str, waited_s: float, reached: bool, **extra: Any) -> dict[str, Any]:
        latest = self._latest()
        entry: dict[str, Any] = {
            "kind": kind,
            "before": before,
            "duration_s": round(waited_s, 3),
            "reached": reached,
            "temperature_c": {f"gpu:{gpu}": s.temperature_c for (_, gpu), s in sorted(latest.items())},
            "power_w": {f"gpu:{gpu}": s.power_w for (_, gpu), s in sorted(latest.items())},
            **extra,
        }
        self.waits.append(entry)
        return entry

    def settle(self, before: str = "idle") -> None:
        """Wait until the GPUs are steady (between ``min_wait_s``, at least ``window_s``, and ``max_wait_s``);
        remember each GPU's temperature then as the baseline cooldowns return to."""
        if not self.active:
            return
        config = self.config
        logger.info(
            "waiting for steady GPUs (temperature within %g °C, power within %g W over %g s; at most %g s)",
            config.temperature_tolerance_c,
            config.power_tolerance_w,
            config.window_s,
            config.max_wait_s,
        )
        at_least_s = max(config.min_wait_s, config.window_s)
        waited_s, reached = self._wait(lambda now_s, _: self._is_steady(now_s), at_least_s, config.max_wait_s)
        entry = self._record_wait("steady", before, waited_s, reached)
        self._baseline_c = {key: s.temperature_c for key, s in self._latest().items() if s.temperature_c is not None}
        if reached:
            logger.info("GPUs steady after %.1f s: %s", waited_s, entry["temperature_c"])
        else:
            self._warn(
                f"GPUs not steady after {waited_s:.0f} s (steady_hardware.max_wait_s): temperature "
                f"{entry['temperature_c']} °C, power {entry['power_w']} W; measuring anyway"
            )

    def cool_down(self, before: str) -> None:
        """Before window ``before``: the configured cooldown (back to the baseline temperature, or a fixed time)."""
        if not self.active or self.config.cooldown == "none":
            return
        config = self.config
        if config.cooldown == "fixed":
            waited_s, _ = self._wait(lambda now_s, waited_s: True, config.cooldown_s, config.cooldown_s)
            self._record_wait("cooldown", before, waited_s, True, target="fixed")
            return
        if not self._baseline_c:
            return  # no temperature to return to

        def back(now_s: float, waited_s: float) -> bool:
            latest = self._latest()
            return all(
                (sample := latest.get(key)) is not None
                and sample.temperature_c is not None
                and sample.temperature_c <= base_c + config.temperature_tolerance_c
                for key, base_c in self._baseline_c.items()
            )

        waited_s, reached = self._wait(back, 0.0, config.max_wait_s)
        baseline = {f"gpu:{gpu}": c for (_, gpu), c in sorted(self._baseline_c.items())}
        entry = self._record_wait("cooldown", before, waited_s, reached, target="baseline", baseline_c=baseline)
        if not reached:
            self._warn(
                f"GPUs not back to their baseline temperature {baseline} °C after {waited_s:.0f} s before window "
                f"'{before}' (now {entry['temperature_c']} °C); measuring anyway"
            )

    # -- the result's block ------------------------------------------------------------------------------------------

    def _window(self, window: WindowMeasurement) -> dict[str, Any]:
        gpus: dict[str, dict[str, Any]] = {}
        everything = Tally()
        for meter in self._gpu_meters:
            for reading in window.readings:
                if reading.meter != meter.name or not reading.device.startswith("gpu:"):
                    continue
                if reading.start_s is None or reading.end_s is None:
                    continue
                tally = meter.conditions.tally(int(reading.device.split(":", 1)[1]), reading.start_s, reading.end_s)
                gpus[reading.device] = describe(tally)
                everything += tally
        block = {"window": window.name, "kind": window.kind, "repetition": window.repetition}
        return block | describe(everything) | {"gpus": gpus}

    def block(self, windows: Sequence[WindowMeasurement]) -> dict[str, Any] | None:
        """The result's ``hardware`` block (None without a GPU meter); warns about each throttled measured window."""
        if not self._records:
            return None
        blocks = [self._window(window) for window in windows]
        measured = [b for b in blocks if b["kind"] != "idle"]
        throttled = [b for b in measured if b["throttle"] == THROTTLED]
        for entry in throttled:
            reasons = ", ".join(f"{kind} {share:.0%}" for kind, share in entry["reasons"].items())
            self._warn(
                f"window '{entry['window']}': the GPU throttled in {entry['throttled_fraction']:.0%} of its samples "
                f"({reasons}); its energy and speed are not those of an unthrottled GPU"
            )
        verdict = (
            THROTTLED
            if throttled
            else UNKNOWN
            if not measured or any(b["throttle"] == UNKNOWN for b in measured)
            else "not-throttled"
        )
        config = self.config
        return {
            "steady_wait": "on" if self.active else "off",
            "settings": config.model_dump(mode="json") if self.active else None,
            "waits": self.waits,
            "throttle": verdict,
            "throttled_windows": [b["window"] for b in throttled],
            "windows": blocks,
        }


__all__ = ["CHECK_INTERVAL_S", "SteadyHardware"]
