"""Energy per verified answer: scorers, the accuracy's Wilson interval, joules per correct answer, end to end.

The end-to-end runs use the test server answering from a table (so exactly 7 of 10 answers are right) and the
packaged tiny model (random weights: no answer is right, so energy per correct answer is null with its reason).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, runner_config
from repo_paths import REPO_ROOT

from ai_energy_benchmarks.config.schema import BenchmarkConfig, ScenarioConfig
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.results.quality import quality_block
from ai_energy_benchmarks.results.stats import wilson_interval
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.scoring import create_scorer, final_number
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

SCORER = {"type": "numeric"}


def scorer(**config: Any) -> Any:
    return create_scorer(ScenarioConfig.model_validate({"scorer": config}).scorer)  # type: ignore[arg-type]


# -- scorers --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", 72.0),
        ("The total is 1,234 apples.", 1234.0),
        ("First 3, then 4, so the answer is 12.", 12.0),
        ("It costs $2,500.50 in all", 2500.5),
        ("#### -7", -7.0),
        ("The answer is 72.\n#### 72.", 72.0),
        ("no number here", None),
    ],
)
def test_the_final_number_is_the_last_one_or_the_one_after_hashes(text: str, number: float | None) -> None:
    assert final_number(text) == number


def test_numeric_scorer_compares_the_answers_last_number_with_a_gsm8k_reference() -> None:
    score = scorer(type="numeric")
    reference = "He has 5 + 3 = 8 boxes, 8 x 9 = 72.\n#### 72"
    assert score("Let me think: 5 + 3 = 8, and 8 x 9 = 72. The answer is 72.", reference) is True
    assert score("8 x 9 = 72, minus 2 is 70", reference) is False
    assert score("no idea", reference) is False
    assert score("1,000", "#### 1000") is True
    assert score("72", None) is None  # no reference: not scored, not wrong


def test_choice_scorer_reads_the_letter_and_index_references() -> None:
    score = scorer(type="choice")
    assert score("B", "B") is True
    assert score("(c)", "C") is True
    assert score("A train is fast. The answer is (D).", "D") is True
    assert score("A train is fast. The answer is (D).", "A") is False
    assert score("The answer: B", 1) is True  # an index reference: 0 -> A, 1 -> B
    assert score("B) because ...", "B") is True
    assert score("I cannot say", "B") is False
    assert score("B", 9) is None  # an index beyond the choices: not scorable


def test_regex_scorer_with_and_without_the_reference() -> None:
    assert scorer(type="regex", pattern=r"answer is {reference}\b")("The answer is 42.", "42") is True
    assert scorer(type="regex", pattern=r"answer is {reference}\b")("The answer is 420.", "42") is False
    assert scorer(type="regex", pattern=r"^yes")("Yes, it is.", None) is True


def test_a_callable_scorer_by_dotted_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_checks.py").write_text(
        "def exact(answer, reference):\n    return answer.strip() == str(reference)\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    score = scorer(type="callable", function="my_checks:exact")
    assert score(" 7 ", 7) is True and score("8", 7) is False


def test_a_callable_that_cannot_be_imported_is_one_line_at_its_key() -> None:
    with pytest.raises(ConfigError) as missing:
        scorer(type="callable", function="no_such_module_here:check")
    assert str(missing.value).startswith("scenario.scorer.function: cannot import module 'no_such_module_here'")
    assert "\n" not in str(missing.value)
    with pytest.raises(ConfigError, match=r"scenario.scorer.function: module 'json' has no 'nothing'"):
        scorer(type="callable", function="json:nothing")


def test_scorer_config_errors_name_the_key() -> None:
    from ai_energy_benchmarks.config.loader import build_config

    backend = {"type": "pytorch", "model": "packaged:tiny-llama"}
    with pytest.raises(ConfigError, match=r"scenario.scorer.*needs `pattern`") as regex:
        build_config({"backend": backend, "scenario": {"scorer": {"type": "regex"}}}, "test.yaml")
    assert "\n" not in str(regex.value)
    with pytest.raises(ConfigError, match=r"scenario.scorer.*'module:function'"):
        build_config({"backend": backend, "scenario": {"scorer": {"type": "callable", "function": "x"}}}, "t.yaml")
    with pytest.raises(ConfigError, match=r"scenario.scorer.type"):
        build_config({"backend": backend, "scenario": {"scorer": {"type": "exact"}}}, "test.yaml")


# -- accuracy and energy per correct answer, by hand ----------------------------------------------------------------
def test_wilson_interval_by_hand() -> None:
    # 7 of 10, z = 1.959964: p = 0.7, z^2/n = 0.384146, centre = (0.7 + 0.192073) / 1.384146 = 0.644490,
    # half width = 1.959964 * sqrt(0.021 + 0.0096036) / 1.384146 = 0.247716 -> [0.396774, 0.892206]
    low, high = wilson_interval(7, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.396774, abs=1e-4) and high == pytest.approx(0.892206, abs=1e-4)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-4))  # 3.8415 / 13.8415
    assert wilson_interval(10, 10) == (pytest.approx(0.72247, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) is None


def _config() -> Any:
    return ScenarioConfig.model_validate({"scorer": SCORER}).scorer


def test_joules_per_correct_answer_and_its_interval_by_hand() -> None:
    verdicts = [True] * 7 + [False] * 3
    energy = {"enabled": True, "total_energy_j": 700.0, "gpu_energy_j": 560.0, "all_measured": True}
    block = quality_block(_config(), "numeric", verdicts, energy)
    assert (block["answers"], block["scored"], block["correct"], block["unscored"]) == (10, 10, 7, 0)
    assert block["accuracy"] == 0.7
    assert block["joules_per_correct_answer"] == pytest.approx(100.0)  # 700 J / 7
    assert block["gpu_joules_per_correct_answer"] == pytest.approx(80.0)
    assert block["wh_per_1000_correct_answers"] == pytest.approx(100.0 / 3600 * 1000)  # 27.78 Wh
    low, high = block["joules_per_correct_answer_ci95"]
    assert low == pytest.approx(700.0 / (0.892206 * 10), rel=1e-4)  # 78.45 J
    assert high == pytest.approx(700.0 / (0.396774 * 10), rel=1e-4)  # 176.4 J
    assert block["wh_per_1000_correct_answers_ci95"][1] == pytest.approx(high / 3.6)
    assert block["null_reason"] is None


def test_no_correct_answer_gives_null_with_its_reason_never_infinity() -> None:
    energy = {"enabled": True, "total_energy_j": 50.0, "gpu_energy_j": 50.0}
    block = quality_block(_config(), "numeric", [False, False, None], energy)
    assert block["accuracy"] == 0.0 and block["scored"] == 2 and block["unscored"] == 1
    assert block["joules_per_correct_answer"] is None and block["wh_per_1000_correct_answers"] is None
    assert block["joules_per_correct_answer_ci95"] is None
    assert "no correct answer" in block["null_reason"]
    assert json.dumps(block, allow_nan=False)  # nothing infinite or NaN anywhere
    unmeasured = quality_block(_config(), "numeric", [True, False], {"enabled": False})
    assert unmeasured["accuracy"] == 0.5 and unmeasured["joules_per_correct_answer"] is None
    assert "not measured" in unmeasured["null_reason"]


def test_an_interval_whose_lower_accuracy_bound_is_zero_has_no_upper_energy_bound() -> None:
    block = quality_block(_config(), "numeric", [True], {"enabled": True, "total_energy_j": 10.0})
    low, high = block["joules_per_correct_answer_ci95"]  # Wilson for 1/1 is [0.2065, 1]
    assert low == pytest.approx(10.0) and high == pytest.approx(10.0 / 0.20654, rel=1e-3)


# -- end to end: a server answering from a table --------------------------------------------------------------------
def _tasks(tmp_path: Path, count: int = 10, right: int = 7) -> tuple[Path, dict[str, str]]:
    """``count`` problems (question i: i + i = ?), of which the table answers the first ``right`` correctly."""
    rows, table = [], {}
    for i in range(count):
        question = f"Question {i}: what is {i} + {i}?"
        rows.append({"text": question, "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"})
        table[question] = f"So {i} + {i} is {2 * i if i < right else 2 * i + 1}"
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, table


def test_a_server_answering_7_of_10_right_gives_accuracy_and_joules_per_correct(tmp_path: Path) -> None:
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    path, table = _tasks(tmp_path)
    with FakeNvml([FakeGpu(power=60.0)]), FakeOpenAIServer(models=[MODEL], answers=table) as fake:
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            backend={"device": "cuda", "device_ids": [0], "concurrency": 3},
            scenario={
                "dataset_name": str(path),
                "num_samples": 10,
                "generate_kwargs": {"max_new_tokens": 32, "min_new_tokens": 1},
                "scorer": SCORER,
                "measure_prefill": True,
            },
            metrics={"type": "nvml"},
        )
        result = BenchmarkRunner(config).run()
    quality = result["quality"]
    assert (quality["answers"], quality["scored"], quality["correct"]) == (10, 10, 7)
    assert quality["accuracy"] == 0.7
    assert quality["accuracy_ci95"] == [pytest.approx(0.396774, abs=1e-4), pytest.approx(0.892206, abs=1e-4)]
    energy_j = result["energy"]["total_energy_j"]
    assert energy_j > 0 and quality["energy_j"] == energy_j
    assert quality["joules_per_correct_answer"] == pytest.approx(energy_j / 7)
    assert quality["wh_per_1000_correct_answers"] == pytest.approx(energy_j / 3600 / 7 * 1000)
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    by_prompt = {r["index"]: r["correct"] for r in records if r["phase"] == "generate"}
    assert by_prompt == {i: i < 7 for i in range(10)}
    assert all(r["correct"] is None for r in records if r["phase"] == "prefill")
    assert all("output_text" not in r for r in records)
    prompts = [json.loads(line) for line in (out / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert prompts[3]["reference"] == "3 + 3 = 6\n#### 6"
    with (tmp_path / "results.csv").open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["schema_version"] == "1.3" and row["scorer"] == "numeric" and float(row["accuracy"]) == 0.7
    assert float(row["joules_per_correct_answer"]) == pytest.approx(energy_j / 7)
    assert row["correct_answers"] == "7"
    summary = format_summary(result)
    assert "accuracy      7/10 correct = 70.0% (95% CI 39.7-89.2%, Wilson)" in summary
    assert f"{energy_j / 7:.4f} J per correct answer" in summary


def test_a_callable_scorer_that_cannot_be_imported_stops_before_anything_runs(tmp_path: Path) -> None:
    path, _ = _tasks(tmp_path)
    config = runner_config(
        tmp_path,
        "http://127.0.0.1:9/v1",
        scenario={"dataset_name": str(path), "scorer": {"type": "callable", "function": "nowhere_mod:f"}},
    )
    assert BenchmarkRunner(config).validate() is False
    with pytest.raises(ConfigError, match=r"scenario.scorer.function: cannot import module 'nowhere_mod'"):
        BenchmarkRunner(config).check()


def test_a_scorer_needs_the_reference_column(tmp_path: Path) -> None:
    path = tmp_path / "no_answers.jsonl"
    path.write_text('{"text": "q"}\n', encoding="utf-8")
    config = runner_config(tmp_path, "http://127.0.0.1:9/v1", scenario={"dataset_name": str(path), "scorer": SCORER})
    from ai_energy_benchmarks.datasets.loader import load_prompts
    from ai_energy_benchmarks.exceptions import DatasetError

    with pytest.raises(DatasetError, match=r"reference column 'answer' not found .*scenario.scorer.answer_column"):
        load_prompts(config.scenario)


# -- the packaged task set ------------------------------------------------------------------------------------------
def test_packaged_arithmetic_set_is_what_the_generator_makes() -> None:
    root = REPO_ROOT
    sys.path.insert(0, str(root / "tools"))
    try:
        import make_arithmetic_tasks as tasks
    finally:
        sys.path.remove(str(root / "tools"))
    assert tasks.main(["--check"]) == 0
    rows = tasks.generate()
    assert len(rows) == 100 and rows == tasks.generate()  # seeded: the same problems every time
    for row in rows:  # every reference is right: its working's last result is the number after ####
        working, _, answer = row["answer"].rpartition("\n#### ")
        assert final_number(working) == float(answer)
    score = create_scorer(_config())
    assert all(score(row["answer"], row["answer"]) for row in rows)


def test_packaged_arithmetic_loads_with_references_and_shuffles_them_together() -> None:
    from ai_energy_benchmarks.datasets.loader import load_prompts

    scenario = ScenarioConfig.model_validate(
        {"dataset_name": "packaged:arithmetic", "num_samples": 5, "scorer": SCORER}
    )
    everything = load_prompts(scenario.model_copy(update={"num_samples": 100}))
    answer_of = dict(zip(everything.prompts, everything.references or [], strict=True))
    assert len(answer_of) == 100 and all(answer_of.values())
    shuffled = load_prompts(scenario.model_copy(update={"shuffle": True, "seed": 3}))
    unscored = load_prompts(scenario.model_copy(update={"shuffle": True, "seed": 3, "scorer": None}))
    assert shuffled.prompts == unscored.prompts and unscored.references is None  # same prompts, scorer or not
    assert shuffled.prompts != everything.prompts[:5]
    assert shuffled.references == [answer_of[p] for p in shuffled.prompts]


# -- the PyTorch backend: the packaged tiny model answers nothing right ---------------------------------------------
def test_pytorch_tiny_model_zero_correct_gives_null_not_infinity(tmp_path: Path) -> None:
    config = BenchmarkConfig.model_validate(
        {
            "name": "tiny-scored",
            "output_dir": str(tmp_path / "out"),
            "backend": {"type": "pytorch", "model": "packaged:tiny-llama", "no_weights": True, "device": "cpu"},
            "scenario": {
                "dataset_name": "packaged:arithmetic",
                "num_samples": 4,
                "input_shapes": {"batch_size": 2},
                "generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 4},
                "warmup_runs": 0,
                "measure_prefill": False,
                "scorer": SCORER,
            },
            "metrics": {"enabled": False},
            "reporter": {"output_file": str(tmp_path / "results.csv")},
        }
    )
    result = BenchmarkRunner(config).run()
    quality = result["quality"]
    assert quality["answers"] == 4 and quality["correct"] == 0
    assert quality["joules_per_correct_answer"] is None and quality["wh_per_1000_correct_answers"] is None
    assert quality["null_reason"]
    assert not any(isinstance(v, float) and math.isinf(v) for v in quality.values())
    records = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    # two batches of two prompts: one verdict per prompt, each scored (the answers are text, just wrong)
    assert [r["correct"] for r in records] == [[False, False], [False, False]]
    assert [r["prompt_index"] for r in records] == [0, 2]
    assert "n/a J per correct answer (no correct answer" in format_summary(result)


# -- report page and compare: energy per correct answer side by side ------------------------------------------------
def _scored_run(tmp_path: Path, name: str, right: int) -> Path:
    """A run against the table server answering ``right`` of 10 correctly, metered by a simulated 60 W GPU."""
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    path, table = _tasks(tmp_path, right=right)
    with FakeNvml([FakeGpu(power=60.0)]), FakeOpenAIServer(models=[MODEL], answers=table) as fake:
        config = runner_config(
            tmp_path / name,
            fake.url + "/v1",
            backend={"device": "cuda", "device_ids": [0], "concurrency": 2},
            scenario={
                "dataset_name": str(path),
                "num_samples": 10,
                "generate_kwargs": {"max_new_tokens": 32, "min_new_tokens": 1},
                "scorer": SCORER,
                "measure_prefill": False,
            },
            metrics={"type": "nvml"},
            name=name,
        )
        BenchmarkRunner(config).run()
    return tmp_path / name / "out"


def test_compare_and_the_report_page_show_energy_per_correct_answer(tmp_path: Path) -> None:
    from ai_energy_benchmarks.reporting.compare import compare_runs
    from ai_energy_benchmarks.reporting.compare_format import format_text
    from ai_energy_benchmarks.reporting.html import write_report
    from ai_energy_benchmarks.reporting.runs import load_run

    good, poor = _scored_run(tmp_path, "good", right=8), _scored_run(tmp_path, "poor", right=0)
    comparison = compare_runs([good, poor])
    rows = {row.metric.key: row.cells for row in comparison.rows}
    good_report = load_run(good).report
    assert good_report.quality is not None and good_report.quality.correct == 8
    expected = good_report.energy.total_energy_j / 8  # type: ignore[operator]
    assert rows["joules_per_correct_answer"][0].value == pytest.approx(expected)
    assert rows["joules_per_correct_answer"][1].value is None  # none right: no figure, never infinity
    assert rows["accuracy"][0].value == 0.8 and rows["accuracy"][1].value == 0.0
    assert rows["accuracy"][0].interval == pytest.approx((0.4902, 0.9433), abs=1e-4)  # Wilson, 8 of 10
    text = format_text(comparison)
    assert "energy per correct answer" in text and "energy per 1,000 correct answers" in text
    assert "poor/out: no energy per correct answer (no correct answer" in text
    page = write_report(good, tmp_path / "page").html.read_text(encoding="utf-8")
    assert "Energy per correct answer" in page and f"{expected:.4g} J" in page
    assert "8 correct of 10 scored (80 %)" in page


def test_gsm8k_from_the_local_datasets_cache_gives_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GSM8K's layout (config `main`, columns `question` and `answer` ending `#### n`) read offline from a cache."""
    import datasets
    from hub_cache import build_hub_cache

    from ai_energy_benchmarks.datasets.loader import load_prompts

    rows = [
        {"question": "Tom has 3 bags of 4 apples. How many apples?", "answer": "3 * 4 = <<3*4=12>>12\n#### 12"},
        {"question": "A pen costs $2. What do 5 pens cost?", "answer": "5 * 2 = <<5*2=10>>10\n#### 10"},
    ]
    build_hub_cache(tmp_path / "cache", "openai/gsm8k", {"main": {"test": rows}})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    scenario = ScenarioConfig.model_validate(
        {
            "dataset_name": "openai/gsm8k",
            "dataset_config": "main",
            "split": "test",
            "text_column_name": "question",
            "num_samples": 2,
            "scorer": SCORER,
        }
    )
    loaded = load_prompts(scenario)
    assert loaded.prompts == [row["question"] for row in rows]
    assert loaded.references == [row["answer"] for row in rows]
    score = create_scorer(_config())
    assert [score(answer, ref) for answer, ref in zip(["It is 12.", "9"], loaded.references, strict=True)] == [
        True,
        False,
    ]


def test_a_scorer_that_raises_or_an_answer_without_text_is_unscored_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_energy_benchmarks.records import RequestRecord
    from ai_energy_benchmarks.scoring import score_records, verdicts_of

    (tmp_path / "fussy_checks.py").write_text(
        "def check(answer, reference):\n    if answer == 'boom':\n        raise ValueError('cannot read boom')\n"
        "    return answer == reference\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = ScenarioConfig.model_validate({"scorer": {"type": "callable", "function": "fussy_checks:check"}}).scorer
    assert config is not None

    def answered(index: int, text: str | None, error: str | None = None) -> RequestRecord:
        return RequestRecord(index, 1, 0.0, 1.0, 1, 1, error=error, output_text=text)

    records = [answered(0, "<think>a? no, x</think>a"), answered(1, "x"), answered(2, "boom"), answered(3, None)]
    records.append(answered(4, "d", "http_500"))
    outcome = score_records(config, ["a", "b", "c", "d", "e"], records)
    assert verdicts_of(records) == [True, False, None, None, None]
    assert outcome.errors == [
        "the scorer raised on prompt 2: cannot read boom",
        "1 answers came back without their text (the backend does not return it): not scored",
    ]
