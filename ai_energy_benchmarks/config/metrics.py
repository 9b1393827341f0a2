"""The ``metrics`` section: which meters measure, the machine's location for carbon, and each meter's own settings
(``metrics.codecarbon``, ``metrics.nvml``, ``metrics.amdsmi``, ``metrics.rapl``, ``metrics.dcgm``), with earlier
releases' flat keys still read into their sections."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ModelWrapValidatorHandler, field_validator, model_validator

from ai_energy_benchmarks.config.coerce import Section as _Section
from ai_energy_benchmarks.config.coerce import parse_scalar_string, to_plain

logger = logging.getLogger(__name__)


class DcgmConfig(_Section):
    """``metrics.dcgm``: the serving fleet's GPU energy from NVIDIA DCGM exporters (``metrics.type: dcgm``)."""

    prometheus_url: str | None = Field(
        None,
        description="Prometheus server that scrapes the DCGM exporters (e.g. `http://prometheus:9090`); its HTTP "
        "API is queried after each window. Set this or `exporter_urls`.",
    )
    exporter_urls: list[str] = Field(
        default_factory=list,
        description="DCGM exporters' `/metrics` URLs read directly, without Prometheus (a single server), e.g. "
        "`[http://node-1:9400/metrics]`.",
    )
    selector: str = Field(
        "",
        description='PromQL label matchers choosing the GPUs, e.g. `{Hostname=~"node-[12]", namespace="llm"}` '
        "(labels as the exporter gives them: Hostname, gpu, UUID, modelName, namespace, pod); empty: every GPU.",
    )
    wait_timeout_s: float = Field(
        120.0,
        gt=0,
        description="How long (s) to wait after a window closes for the first scrape after it; past this the "
        "GPUs not yet scraped are reported as not counted.",
    )
    exporter_lag_s: float = Field(
        0.0,
        ge=0,
        description="How old (s) a scraped value may be when scraped: the exporter's collect interval "
        "(dcgm-exporter `-c`, in ms); widens the bounds at each window edge by it.",
    )
    lookback_s: float = Field(
        300.0, gt=0, description="How far (s) before a window's start to look for the scrape that brackets it."
    )
    min_window_scrapes: int = Field(
        3, ge=1, description="A window shorter than this many scrape intervals is flagged (its bounds are wide)."
    )
    poll_interval_s: float = Field(
        1.0, gt=0, description="Direct mode: how often (s) the exporters are read between window edges."
    )
    request_timeout_s: float = Field(10.0, gt=0, description="Timeout (s) of each HTTP request to Prometheus.")

    @model_validator(mode="after")
    def _one_source(self) -> DcgmConfig:
        if self.prometheus_url and self.exporter_urls:
            raise ValueError("set prometheus_url or exporter_urls, not both")
        selector = self.selector.strip()
        if selector and not (selector.startswith("{") and selector.endswith("}")):
            raise ValueError('selector must be label matchers in braces, e.g. {Hostname="node-1"}')
        return self


class NvmlSettings(_Section):
    """The `nvml` meter's own settings (NVIDIA GPUs through NVML)."""

    poll_interval_s: float = Field(
        0.05,
        gt=0,
        le=0.1,
        description="Power/clock/temperature polling interval (s), on average (jittered 0.5-1.5x); at least 10 Hz. "
        "Polled power is the energy estimate of a GPU without an energy counter.",
    )


class AmdSmiSettings(_Section):
    """The `amdsmi` meter's own settings (AMD GPUs through AMD SMI)."""

    poll_interval_s: float = Field(
        0.05,
        gt=0,
        le=0.1,
        description="Power/clock/temperature polling interval (s), on average (jittered 0.5-1.5x); at least 10 Hz.",
    )


class RaplSettings(_Section):
    """The `rapl` meter's own settings (CPU package and DRAM counters through Linux powercap)."""

    root: str = Field("/sys/class/powercap", description="Where the RAPL powercap tree is read from.")
    poll_interval_s: float = Field(
        0.1,
        gt=0,
        le=60.0,
        description="Background read interval (s): tracks counter wraparounds and records the counters so a past "
        "interval (the HTTP steady state) can be read back.",
    )


class CodeCarbonSettings(_Section):
    """The `codecarbon` meter's own settings (CodeCarbon's tracker)."""

    measure_power_secs: float = Field(1.0, gt=0, description="CodeCarbon's measurement interval in seconds.")
    tracking_mode: Literal["machine", "process"] = Field(
        "machine", description="CodeCarbon scope: the whole machine or this process."
    )
    online: bool = Field(
        False, description="Use CodeCarbon's online tracker (geolocates over the network); off: offline tracker."
    )


#: Flat keys of earlier releases -> (section, key) they now live in; still accepted, with a deprecation logged once.
FLAT_METRICS_KEYS: dict[str, tuple[str, str]] = {
    "nvml_poll_interval_s": ("nvml", "poll_interval_s"),
    "rapl_root": ("rapl", "root"),
    "rapl_poll_interval_s": ("rapl", "poll_interval_s"),
    "measure_power_secs": ("codecarbon", "measure_power_secs"),
    "tracking_mode": ("codecarbon", "tracking_mode"),
    "online": ("codecarbon", "online"),
}
_deprecation_logged: set[str] = set()


def _same_value(first: Any, second: Any) -> bool:
    """Whether two spellings of a setting agree (``"0.5"`` from a command line and ``0.5`` from a file do)."""
    if first == second:
        return True
    first, second = (parse_scalar_string(v) if isinstance(v, str) else v for v in (first, second))
    return bool(first == second)


class MetricsConfig(_Section):
    """Energy and emissions measurement. Settings of one meter live in its own section (`metrics.nvml`, ...)."""

    enabled: bool = Field(True, description="Measure energy. When false, only speed is reported.")
    type: str | list[str] = Field(
        "codecarbon",
        description="Energy meter, or several run together: `codecarbon` (default), `nvml` (NVIDIA GPUs), "
        "`amdsmi` (AMD GPUs), `rapl` (CPU package and DRAM counters), `dcgm` (a serving fleet's GPUs via DCGM "
        "exporters), e.g. `[codecarbon, nvml]`.",
    )
    project_name: str = Field("ai_energy_benchmarks", description="Project name recorded by CodeCarbon.")
    output_dir: str | None = Field(
        None, description="Where CodeCarbon writes its own files; defaults to the run's output_dir."
    )
    country_iso_code: str = Field(
        "USA",
        description="ISO 3166-1 alpha-3 country code of the machine, for the carbon intensity (CodeCarbon's grid "
        "data for that country).",
    )
    region: str | None = Field(None, description="Region within the country (e.g. `california`), if known.")
    idle_seconds: float = Field(
        0.0, ge=0, description="Seconds of idle baseline measured after loading, before warm-up (0: none)."
    )
    cross_check_tolerance: float = Field(
        0.02, gt=0, description="Relative disagreement between two meters of one device that is flagged."
    )
    codecarbon: CodeCarbonSettings = Field(
        default_factory=CodeCarbonSettings,
        description="The `codecarbon` meter (earlier flat keys `measure_power_secs`, `tracking_mode`, `online` are "
        "still read into it).",
    )
    nvml: NvmlSettings = Field(
        default_factory=NvmlSettings,
        description="The `nvml` meter (the earlier flat key `nvml_poll_interval_s` is still read into it).",
    )
    amdsmi: AmdSmiSettings = Field(default_factory=AmdSmiSettings, description="The `amdsmi` meter.")
    rapl: RaplSettings = Field(
        default_factory=RaplSettings,
        description="The `rapl` meter (earlier flat keys `rapl_root`, `rapl_poll_interval_s` are still read into it).",
    )
    dcgm: DcgmConfig = Field(
        default_factory=DcgmConfig, description="`dcgm` meter: fleet GPU energy from DCGM exporters (Prometheus)."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _flat_keys_into_sections(cls, data: Any, handler: ModelWrapValidatorHandler[MetricsConfig]) -> MetricsConfig:
        """Earlier releases' flat keys (``measure_power_secs``, ``nvml_poll_interval_s``, ...) into their meter's
        section; the same setting given both ways with different values is an error. The deprecation is logged
        (once per key and process) only for a section that validates: a bad config gets its one-line error alone."""
        data = to_plain(data)
        used: list[str] = []
        if isinstance(data, dict) and any(key in data for key in FLAT_METRICS_KEYS):
            data = dict(data)
            for flat, (section, key) in FLAT_METRICS_KEYS.items():
                if flat not in data:
                    continue
                value = data.pop(flat)
                target = data.get(section)
                if isinstance(target, BaseModel):
                    target = target.model_dump(exclude_unset=True)
                target = dict(to_plain(target)) if isinstance(target, Mapping) else ({} if target is None else target)
                if not isinstance(target, dict):
                    raise ValueError(f"{section} must be a section (a mapping), got {type(target).__name__}")
                if key in target and not _same_value(target[key], value):
                    raise ValueError(
                        f"{flat} ({value!r}) and {section}.{key} ({target[key]!r}) are the same setting with "
                        f"different values: give only {section}.{key}"
                    )
                target[key] = value
                data[section] = target
                used.append(flat)
        validated = handler(data)
        for flat in used:
            if flat not in _deprecation_logged:
                _deprecation_logged.add(flat)
                section, key = FLAT_METRICS_KEYS[flat]
                logger.warning("metrics.%s is deprecated: write metrics.%s.%s (read as that)", flat, section, key)
        return validated

    # -- earlier releases' flat names, read from the sections ---------------------------------------------------
    @property
    def measure_power_secs(self) -> float:
        """``codecarbon.measure_power_secs`` (the flat name of earlier releases)."""
        return self.codecarbon.measure_power_secs

    @measure_power_secs.setter
    def measure_power_secs(self, value: Any) -> None:
        self.codecarbon.measure_power_secs = value

    @property
    def tracking_mode(self) -> str:
        """``codecarbon.tracking_mode`` (the flat name of earlier releases)."""
        return self.codecarbon.tracking_mode

    @tracking_mode.setter
    def tracking_mode(self, value: Any) -> None:
        self.codecarbon.tracking_mode = value

    @property
    def online(self) -> bool:
        """``codecarbon.online`` (the flat name of earlier releases)."""
        return self.codecarbon.online

    @online.setter
    def online(self, value: Any) -> None:
        self.codecarbon.online = value

    @property
    def nvml_poll_interval_s(self) -> float:
        """``nvml.poll_interval_s`` (the flat name of earlier releases)."""
        return self.nvml.poll_interval_s

    @nvml_poll_interval_s.setter
    def nvml_poll_interval_s(self, value: Any) -> None:
        self.nvml.poll_interval_s = value

    @property
    def rapl_root(self) -> str:
        """``rapl.root`` (the flat name of earlier releases)."""
        return self.rapl.root

    @rapl_root.setter
    def rapl_root(self, value: Any) -> None:
        self.rapl.root = value

    @property
    def rapl_poll_interval_s(self) -> float:
        """``rapl.poll_interval_s`` (the flat name of earlier releases)."""
        return self.rapl.poll_interval_s

    @rapl_poll_interval_s.setter
    def rapl_poll_interval_s(self, value: Any) -> None:
        self.rapl.poll_interval_s = value

    @field_validator("type", mode="before")
    @classmethod
    def _split_meter_names(cls, value: Any) -> Any:
        value = to_plain(value)
        if isinstance(value, str) and "," in value:
            return [part.strip() for part in value.strip("[]").split(",")]
        return value

    @field_validator("type")
    @classmethod
    def _check_meter_names(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not n.strip() for n in names):
            raise ValueError("name at least one meter")
        if len(set(names)) != len(names):
            raise ValueError("meter names must not repeat")
        return value

    @property
    def meter_types(self) -> list[str]:
        """The configured meters as a list."""
        return [self.type] if isinstance(self.type, str) else list(self.type)

    @field_validator("country_iso_code")
    @classmethod
    def _check_country(cls, value: str) -> str:
        value = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", value):
            hint = _alpha2_hint(value)
            raise ValueError(f"must be a three-letter ISO 3166-1 alpha-3 code such as USA or FRA{hint}")
        if not _is_iso3166_alpha3(value):
            raise ValueError("is not an ISO 3166-1 alpha-3 country code (e.g. USA, FRA, DEU, IND)")
        return value


def _is_iso3166_alpha3(code: str) -> bool:
    """Whether ``code`` is an ISO 3166-1 alpha-3 country code (pycountry's list, which CodeCarbon also uses)."""
    try:
        import pycountry
    except ImportError:  # pragma: no cover - pycountry comes with codecarbon, a base dependency
        return True
    return pycountry.countries.get(alpha_3=code) is not None


def _alpha2_hint(code: str) -> str:
    """`` (did you mean 'USA'?)`` for a two-letter code such as ``US``, else an empty string."""
    if not re.fullmatch(r"[A-Z]{2}", code):
        return ""
    try:
        import pycountry
    except ImportError:  # pragma: no cover
        return ""
    country = pycountry.countries.get(alpha_2=code)
    return f" (did you mean '{country.alpha_3}'?)" if country is not None else ""
