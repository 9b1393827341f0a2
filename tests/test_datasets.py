"""Prompt sources, offline: packaged sets, every local file type, folders, sampling, and clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.datasets.loader import load_prompts, packaged_prompt_sets
from ai_energy_benchmarks.exceptions import DatasetError

TEXTS = ["first prompt", "second, with a comma", 'third "quoted"', "fourth\twith a tab"]


def scenario(name: str | Path, **options: object) -> ScenarioConfig:
    return ScenarioConfig(dataset_name=str(name), **options)  # type: ignore[arg-type]


def write_all_formats(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "txt": folder / "p.txt",
        "jsonl": folder / "p.jsonl",
        "json": folder / "p.json",
        "csv": folder / "p.csv",
        "parquet": folder / "p.parquet",
    }
    paths["txt"].write_text("\n".join(t.replace("\t", " ") for t in TEXTS) + "\n\n", encoding="utf-8")
    paths["jsonl"].write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    paths["json"].write_text(json.dumps([{"text": t} for t in TEXTS]))
    import csv

    with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([i, t] for i, t in enumerate(TEXTS))
    pq.write_table(pa.table({"text": TEXTS, "id": list(range(4))}), paths["parquet"])
    return paths


def test_packaged_quickstart_set() -> None:
    assert "quickstart" in packaged_prompt_sets()
    prompts = load_prompts(scenario("packaged:quickstart", num_samples=100))
    assert len(prompts.prompts) == 100
    assert len(set(prompts.prompts)) == 100
    assert prompts.source == "packaged:quickstart"


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet"])
def test_each_local_file_type(tmp_path: Path, kind: str) -> None:
    path = write_all_formats(tmp_path)[kind]
    assert load_prompts(scenario(path, num_samples=4)).prompts == TEXTS


def test_txt_is_one_prompt_per_line(tmp_path: Path) -> None:
    path = write_all_formats(tmp_path)["txt"]
    assert load_prompts(scenario(path, num_samples=4)).prompts == [t.replace("\t", " ") for t in TEXTS]


def test_a_folder_reads_every_supported_file_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "b.jsonl").write_text(json.dumps({"text": "from b"}) + "\n")
    (folder / "a.txt").write_text("from a\n")
    (folder / "notes.md").write_text("ignored\n")
    assert load_prompts(scenario(folder, num_samples=5)).prompts == ["from a", "from b"]


def test_other_column_name(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("question\nwhy?\nhow?\n")
    assert load_prompts(scenario(path, text_column_name="question", num_samples=2)).prompts == ["why?", "how?"]


def test_missing_column_names_the_columns(tmp_path: Path) -> None:
    path = write_all_formats(tmp_path)["csv"]
    with pytest.raises(DatasetError, match=r"column 'prompt' not found \(columns: id, text\)"):
        load_prompts(scenario(path, text_column_name="prompt"))


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    with pytest.raises(DatasetError, match="holds no non-empty prompts"):
        load_prompts(scenario(path))


def test_missing_file_and_unknown_packaged_set(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"file or folder .* not found"):
        load_prompts(scenario(tmp_path / "nope.jsonl"))
    with pytest.raises(DatasetError, match="no packaged prompt set 'nope'"):
        load_prompts(scenario("packaged:nope"))


def test_too_few_prompts_clamped_and_reported_or_refused(tmp_path: Path) -> None:
    path = write_all_formats(tmp_path)["jsonl"]
    clamped = load_prompts(scenario(path, num_samples=10))
    assert clamped.prompts == TEXTS  # never wrapped around to make up the count
    assert clamped.num_requested == 10 and clamped.num_available == 4
    assert "using all 4" in clamped.warnings[0]
    with pytest.raises(DatasetError, match=r"num_samples is 10 but .* holds 4 prompts"):
        load_prompts(scenario(path, num_samples=10, allow_fewer_samples=False))


def test_shuffle_is_seeded_and_the_hash_identifies_the_prompts(tmp_path: Path) -> None:
    a = load_prompts(scenario("packaged:quickstart", num_samples=20, shuffle=True, seed=1))
    b = load_prompts(scenario("packaged:quickstart", num_samples=20, shuffle=True, seed=1))
    c = load_prompts(scenario("packaged:quickstart", num_samples=20, shuffle=True, seed=2))
    plain = load_prompts(scenario("packaged:quickstart", num_samples=20))
    assert a.prompts == b.prompts and a.sha256 == b.sha256
    assert a.prompts != c.prompts and a.sha256 != c.sha256
    assert a.prompts != plain.prompts


def test_hub_dataset_while_offline_fails_fast_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(DatasetError, match="not in the local cache and the hub is offline"):
        load_prompts(scenario("EnergyStarAI/text_generation"))
    assert time.perf_counter() - started < 15
