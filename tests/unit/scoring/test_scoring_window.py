"""A scored local run decodes its answers after the measured windows: the decoding's time and energy are not in them.

The packaged tiny model generates; its tokenizer is a subclass that notes when it decodes and what it returns, and
a meter registered for the run notes when each window closes. The scorer is the user's own function, which keeps
every answer it is given.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.config.schema import BenchmarkConfig, ScenarioConfig
from ai_energy_benchmarks.energy.registry import _FACTORIES as _METER_FACTORIES
from ai_energy_benchmarks.energy.registry import register_meter
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.scoring import score_records

#: ``time.perf_counter()`` when each window closed (a meter's ``stop_window``), by window name.
WINDOW_ENDS: dict[str, float] = {}


class WindowClock:
    """A meter that reads nothing and notes when each window stops."""

    name = "windowclock"
    output_files = ()

    def __init__(self, config: Any, output_dir: Path, gpu_ids: list[int] | None) -> None:
        pass

    def prepare(self) -> None:
        pass

    def start_window(self, name: str) -> None:
        pass

    def stop_window(self, name: str) -> tuple[list[Any], float | None]:
        WINDOW_ENDS[name] = time.perf_counter()
        return [], None

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def _spy_on_decoding(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, list[str]]]:
    """Make every tokenizer the run loads note each decode call: (time, texts returned)."""
    import transformers

    calls: list[tuple[float, list[str]]] = []
    depth = [0]  # batch_decode calls decode: only the outer call is noted
    original = transformers.AutoTokenizer.from_pretrained

    def noted(method: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            try:
                texts = method(self, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                calls.append((time.perf_counter(), [texts] if isinstance(texts, str) else list(texts)))
            return texts

        return call

    def from_pretrained(*args: Any, **kwargs: Any) -> Any:
        tokenizer = original(*args, **kwargs)
        base = type(tokenizer)
        Noting = type("Noting", (base,), {"batch_decode": noted(base.batch_decode), "decode": noted(base.decode)})
        tokenizer.__class__ = Noting
        return tokenizer

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", from_pretrained)
    return calls


def test_a_scored_pytorch_run_decodes_its_answers_after_the_measured_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "noting_scorer.py").write_text(
        "SEEN = []\n\ndef even(answer, reference):\n    SEEN.append(answer)\n    return len(answer) % 2 == 0\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import noting_scorer  # type: ignore[import-not-found]

    decoded = _spy_on_decoding(monkeypatch)
    WINDOW_ENDS.clear()
    register_meter("windowclock", WindowClock)
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
                "repetitions": 2,
                "scorer": {"type": "callable", "function": "noting_scorer:even"},
            },
            "metrics": {"enabled": True, "type": "windowclock"},
            "reporter": {"output_file": str(tmp_path / "results.csv")},
        }
    )
    try:
        BenchmarkRunner(config).run()
    finally:
        del _METER_FACTORIES["windowclock"]

    assert sorted(WINDOW_ENDS) == ["generate-0", "generate-1", "prefill-0", "prefill-1"]
    assert decoded, "the answers were never decoded"
    last_window_end_s = max(WINDOW_ENDS.values())
    assert all(called_s > last_window_end_s for called_s, _ in decoded)  # nothing decoded inside any window
    # The scorer was given exactly what the tokenizer decoded (the generate passes' answers, two per batch), and
    # each prompt's verdict in requests.jsonl is the scorer's on that text.
    texts = [text for _, batch in decoded for text in batch]
    assert texts == noting_scorer.SEEN and len(texts) == 2 * 4
    records = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    generate = [r for r in records if r["phase"] == "generate"]
    assert [v for r in generate for v in r["correct"]] == [len(t) % 2 == 0 for t in texts]
    assert all(r["correct"] is None for r in records if r["phase"] == "prefill")
    assert not any("output_ids" in r or "output_texts" in r for r in records)


def test_scoring_decodes_kept_token_ids_once_and_drops_them() -> None:
    config = ScenarioConfig.model_validate({"scorer": {"type": "numeric"}}).scorer
    assert config is not None
    asked: list[list[list[int]]] = []

    def decode(ids: list[list[int]]) -> list[str]:
        asked.append(ids)
        return [" ".join(str(i) for i in row) for row in ids]

    batch = RequestRecord(0, 2, 0.0, 1.0, 4, 4, output_ids=[[7], [8, 1]], prompt_index=0)
    prefill = RequestRecord(0, 2, 0.0, 1.0, 4, 2, phase="prefill", output_ids=[[3], [4]], prompt_index=0)
    score_records(config, ["#### 7", "#### 2"], [prefill, batch], decode=decode)
    assert batch.correct == [True, False]  # "7" is 7; "8 1" ends in 1, not 2
    assert asked == [[[7], [8, 1]]]  # the prefill pass's answers are not decoded
    assert batch.output_ids is None and prefill.output_ids is None
