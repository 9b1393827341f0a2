"""PyTorch backend options, each observed reaching the model or rejected with a clear message (CPU, offline)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from window_support import WINDOW_CLOCK, inside_any, spy_on_tokenizers, window_clock

from ai_energy_benchmarks.backends.pytorch import packaged_models, packaged_models_dir
from ai_energy_benchmarks.config.parser import BackendConfig, BenchmarkConfig, MetricsConfig, ReporterConfig
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.runner import BenchmarkRunner

TINY = packaged_models_dir() / "tiny-llama"


def run(
    tmp_path: Path, backend: dict[str, Any] | None = None, metrics: MetricsConfig | None = None, **scenario: Any
) -> dict[str, Any]:
    """Run a 3-prompt benchmark without energy metering (these tests are about the backend)."""
    backend_options = {"type": "pytorch", "model": "packaged:tiny-llama", "no_weights": True, "device": "cpu"}
    scenario_options: dict[str, Any] = {"num_samples": 3, "generate_kwargs": {"max_new_tokens": 6, "min_new_tokens": 6}}
    scenario_options.update(scenario)
    config = BenchmarkConfig(
        name="backend-test",
        output_dir=str(tmp_path / "out"),
        backend=BackendConfig(**(backend_options | (backend or {}))),
        scenario=scenario_options,
        metrics=metrics or MetricsConfig(enabled=False),
        reporter=ReporterConfig(output_file=str(tmp_path / "r.csv")),
    )
    return BenchmarkRunner(config).run()


def requests(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if row["phase"] == "generate"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny architecture saved with real (random, seeded) weights, as a local model directory."""
    target = tmp_path_factory.mktemp("saved") / "tiny"
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.from_pretrained(str(TINY)))
    model.save_pretrained(str(target))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TINY / name, target / name)
    return target


def test_fixed_output_length_is_honoured_at_batch_sizes_1_and_4(tmp_path: Path) -> None:
    for batch_size in (1, 4):
        result = run(tmp_path / str(batch_size), num_samples=6, input_shapes={"batch_size": batch_size})
        assert result["summary"]["total_completion_tokens"] == 6 * 6
        rows = requests(tmp_path / str(batch_size))
        assert sum(r["num_prompts"] for r in rows) == 6
        assert all(r["completion_tokens"] == 6 * r["num_prompts"] for r in rows)


def test_without_min_new_tokens_generation_may_stop_at_eos_and_counts_stop(tmp_path: Path) -> None:
    result = run(tmp_path, generate_kwargs={"max_new_tokens": 6, "min_new_tokens": None})
    assert 3 <= result["summary"]["total_completion_tokens"] <= 18


def test_dtype_reaches_the_model(tmp_path: Path) -> None:
    result = run(tmp_path, backend={"torch_dtype": "bfloat16"})
    assert result["model"]["dtype"] == "bfloat16"


def test_attn_implementation_reaches_the_model(tmp_path: Path) -> None:
    result = run(tmp_path, backend={"attn_implementation": "eager"})
    assert result["model"]["attn_implementation"] == "eager"


def test_unknown_attn_implementation_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load 'packaged:tiny-llama' as configured"):
        run(tmp_path, backend={"attn_implementation": "warp_drive"})


def calls_to_generate(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the options of every real ``generate()`` call (the call itself goes through unchanged)."""
    import transformers

    calls: list[dict[str, Any]] = []
    real_generate = transformers.GenerationMixin.generate

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append({k: v for k, v in kwargs.items() if k not in ("input_ids", "attention_mask")})
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(transformers.GenerationMixin, "generate", recording)
    return calls


def test_sampling_and_extra_options_reach_every_measured_generate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = calls_to_generate(monkeypatch)
    options = {"do_sample": True, "temperature": 0.7, "top_k": 5, "top_p": 0.9, "no_repeat_ngram_size": 1}
    result = run(tmp_path, generate_kwargs={"max_new_tokens": 6, "min_new_tokens": 6, **options})
    assert result["summary"]["total_completion_tokens"] == 18
    measured = [c for c in calls if c.get("max_new_tokens") == 6]  # the generate pass (prefill passes ask for 1)
    assert len(measured) >= 3
    assert all(c[key] == value for c in measured for key, value in options.items())


def test_unknown_generate_option_is_rejected_before_measuring(tmp_path: Path) -> None:
    kwargs = {"max_new_tokens": 6, "min_new_tokens": 6, "frobnicate": 3}
    with pytest.raises(ConfigError, match=r"scenario.generate_kwargs: rejected by generate\(\).*frobnicate"):
        run(tmp_path, generate_kwargs=kwargs)
    assert not (tmp_path / "out" / "benchmark_report.json").exists()


def test_beam_search_runs_without_a_streamer(tmp_path: Path) -> None:
    result = run(tmp_path, generate_kwargs={"max_new_tokens": 6, "min_new_tokens": 6, "num_beams": 2})
    assert result["summary"]["total_completion_tokens"] == 18
    assert result["summary"]["mean_ttft_s"] is None and result["summary"]["avg_time_to_first_token"] == 0.0
    assert all(r["ttft_s"] is None for r in requests(tmp_path))


def test_quantisation_without_gpu_is_rejected(tmp_path: Path, saved_model: Path) -> None:
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        run(tmp_path, backend={"model": str(saved_model), "load_in_8bit": True, "no_weights": False})


def test_cuda_without_gpu_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from ai_energy_benchmarks.exceptions import BackendError

    with pytest.raises(BackendError, match="no CUDA GPU is available"):
        run(tmp_path, backend={"device": "cuda"})


def test_local_path_with_device_map_and_max_memory(tmp_path: Path, saved_model: Path) -> None:
    result = run(
        tmp_path,
        backend={"model": str(saved_model), "no_weights": False, "device_map": "auto", "max_memory": {"cpu": "2GiB"}},
    )
    assert result["model"]["weights"] == "loaded"
    assert result["model"]["synthetic"] is False
    assert result["model"]["device_map_requested"] == "auto"
    assert set(result["model"]["device_map"].values()) == {"cpu"}
    assert result["summary"]["total_completion_tokens"] == 18


def test_no_weights_with_a_device_map_is_dispatched(tmp_path: Path) -> None:
    result = run(tmp_path, backend={"device_map": "auto", "max_memory": {"cpu": "1GiB"}})
    assert result["model"]["synthetic"] is True
    assert set(result["model"]["device_map"].values()) == {"cpu"}
    assert result["summary"]["total_completion_tokens"] == 18


def test_no_weights_with_quantisation_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs a CUDA GPU|quantisation needs real weights"):
        run(tmp_path, backend={"load_in_4bit": True})


def test_remote_code_runs_only_when_trusted(tmp_path: Path, saved_model: Path) -> None:
    custom = tmp_path / "custom"
    shutil.copytree(saved_model, custom)
    config = json.loads((custom / "config.json").read_text())
    config["model_type"] = "aieb-custom"
    config["architectures"] = ["CustomForCausalLM"]
    config["auto_map"] = {
        "AutoConfig": "modeling_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM",
    }
    (custom / "config.json").write_text(json.dumps(config))
    (custom / "modeling_custom.py").write_text(
        "from transformers import LlamaConfig, LlamaForCausalLM\n\n\n"
        "class CustomConfig(LlamaConfig):\n    model_type = 'aieb-custom'\n\n\n"
        "class CustomForCausalLM(LlamaForCausalLM):\n    config_class = CustomConfig\n"
    )
    with pytest.raises(ConfigError, match="trust_remote_code"):
        run(tmp_path / "untrusted", backend={"model": str(custom), "no_weights": False})
    result = run(tmp_path / "trusted", backend={"model": str(custom), "no_weights": False, "trust_remote_code": True})
    assert result["model"]["architecture"] == "CustomForCausalLM"
    assert result["summary"]["total_completion_tokens"] == 18


def test_missing_model_is_a_backend_error(tmp_path: Path) -> None:
    from ai_energy_benchmarks.exceptions import BackendError

    with pytest.raises(BackendError, match="cannot load"):
        run(tmp_path, backend={"model": str(tmp_path / "no-such-model"), "no_weights": False})


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("gpt2", 124_439_808),
        ("qwen2.5-0.5b", 494_032_768),
        ("qwen2.5-7b", 7_615_616_512),
        ("mistral-7b-v0.3", 7_248_023_552),
        ("llama-3.1-8b", 8_030_261_248),
    ],
)
def test_packaged_architectures_load_offline_at_their_published_size(name: str, parameters: int) -> None:
    assert name in packaged_models()
    config = transformers.AutoConfig.from_pretrained(str(packaged_models_dir() / name))
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    assert model.num_parameters() == parameters


def test_a_packaged_architecture_without_tokenizer_runs_and_says_so(tmp_path: Path) -> None:
    result = run(tmp_path, backend={"model": "packaged:gpt2"}, num_samples=1)
    assert result["model"]["num_parameters"] == 124_439_808
    assert "tokenizer_note" in result["model"]
    assert result["summary"]["total_completion_tokens"] == 6


def test_truncation_keeps_the_end_of_a_prompt() -> None:
    """A prompt longer than the context loses its start, not its end (where a chat template asks for the answer)."""
    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend

    config = BenchmarkConfig(
        backend=BackendConfig(type="pytorch", model="packaged:tiny-llama", no_weights=True, device="cpu"),
        scenario={"truncation": True, "chat_template": False},
        metrics=MetricsConfig(enabled=False),
    )
    backend = PyTorchBackend(config)
    backend.load()
    try:
        prompt = "alpha " + "energy " * 900 + "omega"
        backend.prepare_prompts([prompt])  # tokenised ahead in full; truncated when a pass's length needs it
        assert backend._encoder is not None
        encoded = backend._encoder.encode([backend.render(prompt)], 0, max_new_tokens=8)
        kept = backend._tokenizer.decode(encoded["input_ids"][0], skip_special_tokens=True)
        assert encoded["input_ids"].shape[1] == 512 - 8
        assert kept.rstrip().endswith("omega") and "alpha" not in kept
    finally:
        backend.close()


def test_num_threads_is_applied_recorded_and_restored(tmp_path: Path) -> None:
    """backend.num_threads reaches torch for the run (the report says so) and torch's own setting is back after."""
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    result = run(tmp_path, backend={"num_threads": wanted})
    assert result["model"]["num_threads"] == wanted
    assert result["model"]["num_threads_chosen"] == "backend.num_threads"
    assert torch.get_num_threads() == before


def test_unset_num_threads_takes_the_cores_actually_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a 2-core machine with both cores busy a CPU run takes one thread; on a quiet one torch's default."""
    from ai_energy_benchmarks.backends import pytorch_threads as backend_module

    monkeypatch.setattr(backend_module, "usable_cores", lambda: 2)
    monkeypatch.setattr(backend_module, "_other_runnable_tasks", lambda: 0.0)
    monkeypatch.setattr(backend_module.os, "getloadavg", lambda: (2.1, 2.0, 1.5))
    threads, how = backend_module.choose_num_threads(None, 2, on_cpu=True)
    assert threads == 1
    assert how == "auto: 2 usable cores, 1-minute load 2.10, 0 other tasks runnable now, so 1 free; torch default 2"
    # Work that started seconds ago shows in the runnable tasks before the load average catches up.
    monkeypatch.setattr(backend_module.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert backend_module.choose_num_threads(None, 2, on_cpu=True)[0] == 2
    monkeypatch.setattr(backend_module, "_other_runnable_tasks", lambda: 2.0)
    assert backend_module.choose_num_threads(None, 2, on_cpu=True)[0] == 1
    # Never more than torch's own default (OMP_NUM_THREADS=1 keeps one); a GPU run and an explicit value as given.
    monkeypatch.setattr(backend_module, "_other_runnable_tasks", lambda: 0.0)
    assert backend_module.choose_num_threads(None, 1, on_cpu=True)[0] == 1
    assert backend_module.choose_num_threads(None, 8, on_cpu=False) == (8, "torch default (not a CPU run)")
    assert backend_module.choose_num_threads(3, 8, on_cpu=True) == (3, "backend.num_threads")


class SteppedModel:
    """A forward step whose duration (s) depends on the threads set, read on a clock it advances itself."""

    def __init__(self, step_s_by_threads: dict[int, float]) -> None:
        self.step_s_by_threads = step_s_by_threads
        self.threads = 0
        self.now_s = 0.0
        self.tried: list[int] = []

    def set_threads(self, threads: int) -> None:
        self.threads = threads
        self.tried.append(threads)

    def step(self) -> None:
        self.now_s += self.step_s_by_threads[self.threads]

    def clock(self) -> float:
        return self.now_s


@pytest.mark.parametrize(
    ("step_s_by_threads", "most", "chosen"),
    [
        ({1: 0.0020, 2: 0.0026}, 2, 1),  # a tiny model: a second thread only adds synchronisation
        ({1: 0.010, 2: 0.0055, 4: 0.0030}, 4, 4),  # a model that scales: every thread helps
        ({1: 0.010, 2: 0.0052, 4: 0.0050}, 4, 2),  # 4 threads are < 10% faster than 2: the fewer win
    ],
)
def test_calibration_keeps_the_fewest_threads_about_as_fast_as_any(
    step_s_by_threads: dict[int, float], most: int, chosen: int
) -> None:
    from ai_energy_benchmarks.backends.pytorch_threads import calibrate_num_threads

    model = SteppedModel(step_s_by_threads)
    threads, how = calibrate_num_threads(model.step, model.set_threads, most, clock=model.clock)
    assert threads == chosen and model.threads == chosen  # the choice is what torch is left with
    assert sorted(set(model.tried)) == sorted(step_s_by_threads)
    assert how.startswith(f"calibrated to {chosen} ") and f"1: {step_s_by_threads[1] * 1e3:.2f} ms" in how


def test_a_big_model_keeps_its_free_cores_without_calibrating() -> None:
    from ai_energy_benchmarks.backends.pytorch_threads import calibrate_num_threads

    model = SteppedModel({8: 0.2})
    threads, how = calibrate_num_threads(model.step, model.set_threads, 8, clock=model.clock)
    assert (threads, model.threads, set(model.tried)) == (8, 8, {8})
    assert how == "kept 8: a forward step took 200.0 ms with 8 threads (> 50 ms: not calibrated)"


def test_an_automatic_choice_is_calibrated_on_the_loaded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a quiet 2-core machine the packaged tiny model is calibrated after loading: the report says what was
    measured, and torch's own setting is back after the run."""
    from ai_energy_benchmarks.backends import pytorch_threads

    monkeypatch.setattr(pytorch_threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(pytorch_threads, "_other_runnable_tasks", lambda: 0.0)
    monkeypatch.setattr(pytorch_threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    # A tiny model's step takes ms, but a busy machine can stretch it past the big-model limit: not what this tests.
    monkeypatch.setattr(pytorch_threads, "CALIBRATION_STEP_LIMIT_S", 60.0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = run(tmp_path)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    how = result["model"]["num_threads_chosen"]
    assert how.startswith("auto: 2 usable cores, 1-minute load 0.00, 0 other tasks runnable now, so 2 free")
    assert f"; calibrated to {result['model']['num_threads']} (fastest forward step by threads: 1: " in how


def test_prompts_are_tokenised_before_the_measured_windows_not_inside_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenised = spy_on_tokenizers(monkeypatch, "__call__")
    with window_clock() as edges:
        run(
            tmp_path,
            metrics=MetricsConfig(enabled=True, type=WINDOW_CLOCK),
            num_samples=4,
            input_shapes={"batch_size": 2},
        )
    assert sorted(edges) == ["generate-0", "prefill-0"]
    # Two batches of two prompts, tokenised once, before any window; nothing is tokenised inside one.
    batches = [returned["input_ids"].shape[0] for _, _, returned in tokenised if returned["input_ids"].shape[0] == 2]
    assert batches == [2, 2]
    assert not [called_s for _, called_s, _ in tokenised if inside_any(edges, called_s)]
    rows = requests(tmp_path)
    assert [r["prompt_index"] for r in rows] == [0, 2] and all(r["prompt_tokens"] > 0 for r in rows)
