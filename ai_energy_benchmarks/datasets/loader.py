"""Load the prompts a scenario asks for.

``packaged:NAME`` reads a prompt set shipped in ``ai_energy_benchmarks/data/prompts``; an existing local path is
read directly (txt: one prompt per line; jsonl/json/csv/parquet: the ``text_column_name`` column; a folder: every
supported file in name order); anything else is a hub dataset id loaded with HF ``datasets`` (imported lazily).

A hub dataset is read from the hub, or, with ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set, from the local
``datasets`` cache (``HF_DATASETS_CACHE``) that an earlier online load filled. Either way the report names the commit
the rows came from (``datasets`` stores a hub dataset under its commit hash).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.config.schema import SYNTHETIC_DATASET, ScenarioConfig
from ai_energy_benchmarks.datasets.packaged import PACKAGED_PREFIX, packaged_file, packaged_names
from ai_energy_benchmarks.datasets.references import hub_references, read_references
from ai_energy_benchmarks.exceptions import DatasetError, one_line

logger = logging.getLogger(__name__)
#: Marks a logged warning that the result's ``warnings`` also carry (the CLI's summary shows those: it drops the
#: log line rather than print the same sentence twice).
IN_RESULT_WARNINGS = {"in_result_warnings": True}

_SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class PromptSet:
    """The prompts a run uses, where they came from, and how many were asked for."""

    prompts: list[str]
    source: str
    num_requested: int
    num_available: int
    warnings: list[str] = field(default_factory=list)
    hub: dict[str, Any] | None = None
    """For a hub dataset: ``id``, ``config``, ``split``, ``revision_requested``, ``commit`` and ``offline``."""
    references: list[Any] | None = None
    """With ``scenario.scorer``: each prompt's reference answer (None where its cell is empty), in prompt order."""
    lengths: list[dict[str, Any]] | None = None
    """Synthetic prompts: per prompt ``input_tokens_requested``, ``input_tokens`` (tokenised again) and
    ``output_tokens_requested`` (None: the generation options decide), written to ``prompts.jsonl``."""
    per_prompt_kwargs: list[dict[str, Any]] | None = None
    """Generation options of each prompt (its drawn ``max_new_tokens``/``min_new_tokens``) over the scenario's."""
    synthetic: dict[str, Any] | None = None
    """Synthetic prompts: the tokenizer, method, seed and the lengths drawn (the report's ``dataset.synthetic``)."""

    @property
    def sha256(self) -> str:
        """Hash of the exact prompt list (order included): two runs with equal hashes used the same prompts."""
        return hashlib.sha256(json.dumps(self.prompts, ensure_ascii=False).encode("utf-8")).hexdigest()


def packaged_prompt_sets() -> list[str]:
    """Names of the prompt sets shipped with the package (use as ``packaged:NAME``)."""
    return packaged_names("prompts")


def _text(value: Any, where: str) -> str:
    """A prompt's text; a missing one (null, or a short CSV row) is an error naming where it is."""
    if value is None:
        raise DatasetError(f"{where}: the prompt is missing (null or an empty cell); fix or remove the record")
    return str(value)


def _texts(values: list[Any], where: str) -> list[str]:
    return [_text(value, f"{where}[{i}]") for i, value in enumerate(values)]


def _column(row: Any, column: str, where: str) -> str:
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected an object per record, got {type(row).__name__}")
    if column not in row:
        raise DatasetError(
            f"{where}: column '{column}' not found (columns: {', '.join(map(str, row))}); set scenario.text_column_name"
        )
    return _text(row[column], where)


def _read_jsonl(path: Path, column: str) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
            texts.append(_column(row, column, f"{path}:{number}"))
    return texts


def _read_json(path: Path, column: str) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        # Many ".json" files are really JSON Lines.
        try:
            return _read_jsonl(path, column)
        except DatasetError:
            raise DatasetError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict) and column in data and isinstance(data[column], list):
        return _texts(list(data[column]), f"{path}: column '{column}'")
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of records or JSON Lines")
    return [t if isinstance(t, str) else _column(t, column, f"{path}[{i}]") for i, t in enumerate(data)]


#: Longest CSV cell read (characters): Python's csv module stops at 128 Ki by default, shorter than a long-context
#: prompt; 16 Mi characters (about 4 M tokens of English) is far beyond any model's context.
MAX_CSV_FIELD_CHARS = 16 * 1024 * 1024


def _read_csv(path: Path, column: str) -> list[str]:
    previous_limit = csv.field_size_limit(MAX_CSV_FIELD_CHARS)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            try:
                if reader.fieldnames is None:
                    return []
                if column not in reader.fieldnames:
                    raise DatasetError(
                        f"{path}: column '{column}' not found (columns: {', '.join(reader.fieldnames)}); "
                        "set scenario.text_column_name"
                    )
                return [_text(row[column], f"{path}:{reader.line_num}") for row in reader]
            except csv.Error as exc:
                line = reader.line_num + 1  # the record being read when it failed
                if "field larger" in str(exc):
                    raise DatasetError(
                        f"{path}:{line}: a CSV field is longer than {MAX_CSV_FIELD_CHARS:,} characters (16 MiB); "
                        "a prompt that long is no prompt (is a quote left open?); use JSON Lines for huge texts"
                    ) from None
                raise DatasetError(f"{path}:{line}: not a readable CSV file ({exc})") from None
    finally:
        csv.field_size_limit(previous_limit)


def _read_parquet(path: Path, column: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a file that is not Parquet
        raise DatasetError(f"{path}: not a readable Parquet file ({one_line(exc)})") from None
    if column not in table.column_names:
        raise DatasetError(
            f"{path}: column '{column}' not found (columns: {', '.join(table.column_names)}); "
            "set scenario.text_column_name"
        )
    return _texts(table.column(column).to_pylist(), f"{path}: column '{column}'")


def _read_file(path: Path, column: str) -> list[str]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if suffix == ".jsonl":
            return _read_jsonl(path, column)
        if suffix == ".json":
            return _read_json(path, column)
        if suffix == ".csv":
            return _read_csv(path, column)
        if suffix == ".parquet":
            return _read_parquet(path, column)
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    raise DatasetError(f"{path}: unsupported file type '{suffix}' (use one of {', '.join(_SUPPORTED_SUFFIXES)})")


def _read_local(path: Path, column: str) -> list[str]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUPPORTED_SUFFIXES and p.is_file())
        if not files:
            raise DatasetError(f"{path}: folder holds no {', '.join(_SUPPORTED_SUFFIXES)} files")
        texts: list[str] = []
        for file in files:
            texts.extend(_read_file(file, column))
        return texts
    return _read_file(path, column)


def _offline() -> bool:
    return any(
        os.environ.get(flag, "").strip().lower() in ("1", "true", "yes", "on")
        for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA_PREFIX_RE = re.compile(r"^[0-9a-f]{7,40}$")


def _hub_load_error(scenario: ScenarioConfig, exc: Exception, offline: bool) -> DatasetError:
    """Turn a ``datasets`` failure into a one-line message naming the setting to change."""
    name = scenario.dataset_name
    reason = one_line(exc, all_lines=True)
    if reason.startswith("Unknown split"):
        return DatasetError(f"scenario.split: hub dataset '{name}' has no split '{scenario.split}': {reason}")
    if ("configuration" in reason and "cache" in reason) or ("find cache for" in reason and "config" in reason):
        return DatasetError(f"scenario.dataset_config: hub dataset '{name}': {reason}")
    if offline:
        return DatasetError(
            f"scenario.dataset_name: hub dataset '{name}' is not in the local cache and the hub is offline "
            f"(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set): {reason}"
        )
    return DatasetError(f"scenario.dataset_name: cannot load hub dataset '{name}': {reason}")


def _cached_commit(data: Any) -> str | None:
    """The commit hash ``datasets`` stored the rows under (the folder holding the Arrow files), if it is one."""
    for cache_file in getattr(data, "cache_files", None) or []:
        folder = Path(str(cache_file.get("filename", ""))).parent.name
        if _COMMIT_RE.match(folder):
            return folder
    return None


def _read_hub(scenario: ScenarioConfig) -> tuple[list[str], dict[str, Any], list[str], list[Any] | None]:
    name = scenario.dataset_name
    offline = _offline()
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a base dependency
        raise DatasetError(f"hub dataset '{name}' needs the 'datasets' package ({exc})") from None
    # The library never prints: datasets' messages go through `logging` (the caller's handlers), and its progress
    # bars are off (the CLI shows its own progress).
    datasets_logger = logging.getLogger("datasets")
    for handler in list(datasets_logger.handlers):
        if type(handler) is logging.StreamHandler:  # the console handler datasets adds on import
            datasets_logger.removeHandler(handler)
    datasets_logger.propagate = True
    datasets.disable_progress_bars()
    try:
        data = datasets.load_dataset(name, scenario.dataset_config, split=scenario.split, revision=scenario.revision)
    except Exception as exc:
        raise _hub_load_error(scenario, exc, offline) from None
    column = scenario.text_column_name
    if column not in data.column_names:
        raise DatasetError(
            f"{name}: column '{column}' not found (columns: {', '.join(data.column_names)}); "
            "set scenario.text_column_name"
        )
    commit = _cached_commit(data)
    warnings: list[str] = []
    requested = scenario.revision
    if offline and requested is not None:
        if _SHA_PREFIX_RE.match(requested.lower()) and commit is not None:
            if not commit.startswith(requested.lower()):
                raise DatasetError(
                    f"scenario.revision: offline, datasets reads the most recently cached copy of '{name}', commit "
                    f"{commit}, not {requested} (it cannot choose a cached commit without the hub)"
                )
        else:
            message = (
                f"scenario.revision '{requested}' cannot be resolved while offline; "
                f"used the cached copy of '{name}'" + (f" at commit {commit}" if commit else "")
            )
            logger.warning(message, extra=IN_RESULT_WARNINGS)
            warnings.append(message)
    hub = {
        "id": name,
        "config": getattr(getattr(data, "info", None), "config_name", None) or scenario.dataset_config,
        "split": scenario.split,
        "revision_requested": requested,
        "commit": commit,
        "offline": offline,
    }
    references = hub_references(data, name, scenario.scorer.answer_column) if scenario.scorer is not None else None
    return _texts(list(data[column]), f"hub:{name}: column '{column}'"), hub, warnings, references


def prompt_source(scenario: ScenarioConfig) -> tuple[str, Path | None]:
    """Where ``scenario.dataset_name`` points, checked without reading it: ``("packaged" | "local", path)``,
    ``("hub", None)`` or ``("synthetic", None)`` (made with the model's tokenizer once it is loaded:
    :func:`ai_energy_benchmarks.datasets.synthetic.make_synthetic_prompts`).

    Raises:
        DatasetError: an unknown packaged set, or a local file or folder that does not exist.
    """
    name = scenario.dataset_name
    if name == SYNTHETIC_DATASET:
        return "synthetic", None
    if name.startswith(PACKAGED_PREFIX):
        return "packaged", packaged_file(name[len(PACKAGED_PREFIX) :], "prompts", "scenario.dataset_name", "prompt set")
    local = Path(name).expanduser()
    if local.exists():
        return "local", local
    if name.startswith((".", "/", "~")) or local.suffix.lower() in _SUPPORTED_SUFFIXES:
        raise DatasetError(f"scenario.dataset_name: file or folder '{name}' not found")
    return "hub", None


def load_prompts(scenario: ScenarioConfig) -> PromptSet:
    """Load, optionally shuffle, and take ``num_samples`` prompts for ``scenario``.

    Raises:
        DatasetError: a missing file, column or packaged set, an empty dataset, or a hub dataset requested offline.
    """
    name = scenario.dataset_name
    hub: dict[str, Any] | None = None
    hub_warnings: list[str] = []
    references: list[Any] | None = None
    answer_column = scenario.scorer.answer_column if scenario.scorer is not None else None
    kind, path = prompt_source(scenario)
    if kind == "synthetic":
        raise DatasetError(
            "scenario.dataset_name: synthetic prompts are made with the model's tokenizer once the backend is loaded "
            "(datasets.synthetic.make_synthetic_prompts), not by load_prompts"
        )
    if kind == "packaged" and path is not None:
        texts, source = _read_jsonl(path, "text"), name
        if answer_column is not None:
            references = read_references(path, answer_column, _SUPPORTED_SUFFIXES)
    elif kind == "local" and path is not None:
        texts, source = _read_local(path, scenario.text_column_name), str(path.resolve())
        if answer_column is not None:
            references = read_references(path, answer_column, _SUPPORTED_SUFFIXES)
    else:
        texts, hub, hub_warnings, references = _read_hub(scenario)
        source = f"hub:{name}"

    if references is not None and len(references) != len(texts):  # pragma: no cover - read from the same rows
        raise DatasetError(f"{source}: {len(texts)} prompts but {len(references)} reference answers")
    rows = [(t, None if references is None else references[i]) for i, t in enumerate(texts) if t.strip()]
    if not rows:
        raise DatasetError(f"scenario.dataset_name: {source} holds no non-empty prompts")
    available = len(rows)
    if scenario.shuffle:  # the same permutation of the prompts as without references (same length, same seed)
        random.Random(scenario.seed).shuffle(rows)
    texts = [t for t, _ in rows]
    warnings: list[str] = list(hub_warnings)
    if scenario.num_samples > available and not scenario.allow_fewer_samples:
        raise DatasetError(
            f"scenario.num_samples is {scenario.num_samples} but {source} holds {available} prompts "
            "(set scenario.allow_fewer_samples=true to use them all)"
        )
    if scenario.num_samples > available:
        message = (
            f"scenario.num_samples is {scenario.num_samples} but {source} holds {available} prompts; "
            f"using all {available}"
        )
        logger.warning(message, extra=IN_RESULT_WARNINGS)
        warnings.append(message)
    prompts = texts[: scenario.num_samples]
    return PromptSet(
        prompts=prompts,
        references=None if references is None else [r for _, r in rows[: scenario.num_samples]],
        source=source,
        num_requested=scenario.num_samples,
        num_available=available,
        warnings=warnings,
        hub=hub,
    )
