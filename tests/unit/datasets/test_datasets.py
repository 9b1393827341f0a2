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
    with pytest.raises(DatasetError, match=r"^scenario\.dataset_name: .* holds no non-empty prompts"):
        load_prompts(scenario(path))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("nulls.jsonl", '{"text": "ok"}\n{"text": null}\n', r"nulls\.jsonl:2: the prompt is missing"),
        ("short.csv", "id,text\n1,ok\n2\n", r"short\.csv:3: the prompt is missing"),
        ("broken.parquet", "not parquet at all", r"broken\.parquet: not a readable Parquet file"),
    ],
)
def test_missing_prompts_and_unreadable_files_are_one_line_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=message) as caught:
        load_prompts(scenario(path))
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2


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


# Hub datasets, read offline from the local `datasets` cache an earlier online load left behind.

HUB_ID = "aieb-test/tiny_prompts"
HUB_ROWS = {
    "default": {
        "train": [{"question": f"default train {i}", "id": i} for i in range(5)],
        "test": [{"question": f"default test {i}", "id": i} for i in range(3)],
    },
    "hard": {
        "train": [{"question": f"hard train {i}", "id": i} for i in range(4)],
        "test": [{"question": f"hard test {i}", "id": i} for i in range(2)],
    },
}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hub_cache import build_hub_cache

    cache = tmp_path_factory.mktemp("hf_datasets_cache")
    build_hub_cache(cache, HUB_ID, HUB_ROWS)
    return cache


@pytest.fixture
def offline_cache(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point `datasets` at the prepared cache, as HF_DATASETS_CACHE does for a new process."""
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", hub_cache)
    return hub_cache


def hub(**options: object) -> ScenarioConfig:
    base: dict[str, object] = {"text_column_name": "question", "num_samples": 100, "dataset_config": "hard"}
    return scenario(HUB_ID, **{**base, **options})


def test_hub_dataset_read_from_the_local_cache_offline(offline_cache: Path) -> None:
    from hub_cache import COMMIT

    train = load_prompts(hub(num_samples=3))
    assert train.prompts == ["hard train 0", "hard train 1", "hard train 2"]
    assert train.source == f"hub:{HUB_ID}" and train.num_available == 4
    assert train.hub == {
        "id": HUB_ID,
        "config": "hard",
        "split": "train",
        "revision_requested": None,
        "commit": COMMIT,
        "offline": True,
    }
    test = load_prompts(hub(dataset_config="default", split="test"))
    assert test.prompts == ["default test 0", "default test 1", "default test 2"]
    assert test.hub is not None and test.hub["config"] == "default" and test.hub["split"] == "test"
    assert "using all 3" in test.warnings[0]  # 100 asked, 3 held: clamped and said


def test_hub_dataset_shuffle_uses_the_cached_rows(offline_cache: Path) -> None:
    shuffled = load_prompts(hub(shuffle=True, seed=3))
    assert sorted(shuffled.prompts) == [f"hard train {i}" for i in range(4)]
    assert shuffled.prompts == load_prompts(hub(shuffle=True, seed=3)).prompts


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset_config": None}, r"^scenario\.dataset_config: hub dataset 'aieb-test/tiny_prompts': .*default, hard"),
        ({"dataset_config": "easy"}, r"^scenario\.dataset_config: .*'easy'.*\['default', 'hard'\]"),
        ({"split": "validation"}, r"^scenario\.split: hub dataset .* has no split 'validation'.*'train', 'test'"),
        ({"text_column_name": "prompt"}, r"column 'prompt' not found \(columns: question, id\)"),
        ({"revision": "0123abc"}, r"^scenario\.revision: offline, .* 3f1c0ffee0d1\w+, not 0123abc"),
    ],
)
def test_hub_cache_errors_name_the_setting(offline_cache: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(DatasetError, match=message) as caught:
        load_prompts(hub(**options))
    assert "\n" not in str(caught.value)


def test_hub_revision_offline_checked_against_the_cached_commit(offline_cache: Path) -> None:
    from hub_cache import COMMIT

    pinned = load_prompts(hub(revision=COMMIT[:10], num_samples=4))
    assert pinned.warnings == [] and pinned.hub is not None and pinned.hub["revision_requested"] == COMMIT[:10]
    branch = load_prompts(hub(revision="main", num_samples=2))
    assert branch.prompts == ["hard train 0", "hard train 1"]
    assert branch.warnings == [
        "scenario.revision 'main' cannot be resolved while offline; "
        f"used the cached copy of '{HUB_ID}' at commit {COMMIT}"
    ]


def test_hub_dataset_not_in_the_cache_fails_fast(offline_cache: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(DatasetError, match="'aieb-test/other' is not in the local cache and the hub is offline"):
        load_prompts(scenario("aieb-test/other"))
    assert time.perf_counter() - started < 15
