"""Multi-turn conversations: the conversation file, the messages sent each turn (history = the model's own answers),
turn order under concurrency, per-turn and per-conversation figures, the prefix-cache counters, and both backends."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, runner_config

from ai_energy_benchmarks.config.loader import build_config
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.config.sessions import MultiTurnConfig
from ai_energy_benchmarks.datasets.conversations import history_messages, load_conversations
from ai_energy_benchmarks.exceptions import ConfigError, DatasetError
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

TOKENS = 4

#: Three conversations; each user turn starts with a word naming it (the fake server tags its answer with it).
CONVERSATIONS: list[dict[str, Any]] = [
    {
        "id": "a",
        "conversations": [
            {"from": "human", "value": "a0 first question of a"},
            {"from": "gpt", "value": "dataset answer a0"},
            {"from": "human", "value": "a1 second question"},
            {"from": "gpt", "value": "dataset answer a1"},
            {"from": "human", "value": "a2 third"},
        ],
    },
    {
        "id": "b",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "b0 hello there"},
            {"role": "assistant", "content": "dataset answer b0"},
            {"role": "user", "content": "b1 again"},
            {"role": "assistant", "content": "dataset answer b1"},
        ],
    },
    {
        "id": "c",
        "messages": [
            {"role": "user", "content": "c0 one"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": "c1 two"},
            {"role": "assistant", "content": "y"},
            {"role": "user", "content": "c2 three"},
            {"role": "assistant", "content": "z"},
        ],
    },
]


def write_conversations(tmp_path: Path, rows: list[dict[str, Any]] = CONVERSATIONS) -> Path:
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def tagged_answer(user_turn: str) -> str:
    """What the fake server (``tag_answers``) answers to a turn: TOKENS tokens tagged with the turn's first word."""
    tag = user_turn.split()[0]
    return "".join(f" {tag}.t{i}" for i in range(TOKENS))


def expected_messages(conversation: dict[str, Any], turn: int, history: str) -> list[dict[str, str]]:
    """The messages a turn must be sent with, written out from the file (not from the code under test)."""
    items = conversation.get("messages") or [
        {"role": {"human": "user", "gpt": "assistant"}.get(m["from"], m["from"]), "content": m["value"]}
        for m in conversation["conversations"]
    ]
    system = [m for m in items if m["role"] == "system"]
    users = [m["content"] for m in items if m["role"] == "user"]
    dataset = [m["content"] for m in items if m["role"] == "assistant"]
    messages = list(system)
    for earlier in range(turn):
        answer = tagged_answer(users[earlier]) if history == "model" else dataset[earlier]
        messages += [{"role": "user", "content": users[earlier]}, {"role": "assistant", "content": answer}]
    return [*messages, {"role": "user", "content": users[turn]}]


def http_run(tmp_path: Path, server: FakeOpenAIServer, history: str = "model", **extra: Any) -> dict[str, Any]:
    config = runner_config(
        tmp_path,
        server.url + "/v1",
        backend={"concurrency": 2, **extra.pop("backend", {})},
        scenario={
            "num_samples": 3,
            "warmup_runs": 0,
            "generate_kwargs": {"max_new_tokens": TOKENS, "min_new_tokens": TOKENS},
            "multi_turn": {"enabled": True, "dataset": str(write_conversations(tmp_path)), "history": history},
        },
        **extra,
    )
    return BenchmarkRunner(config).run()


# -- the conversation file -----------------------------------------------------------------------------------------
def test_both_shapes_are_read_with_system_messages_and_the_datasets_answers(tmp_path: Path) -> None:
    bad = {"id": "bad", "messages": [{"role": "user", "content": "u"}, {"role": "user", "content": "v"}]}
    rows = [*CONVERSATIONS, bad]
    config = MultiTurnConfig(enabled=True, dataset=str(write_conversations(tmp_path, rows)), max_turns=2)
    loaded = load_conversations(config, 10)
    assert [c.id for c in loaded.conversations] == ["a", "b", "c"]
    assert loaded.conversations[0].user_turns == ["a0 first question of a", "a1 second question"]
    assert loaded.conversations[1].system == "be brief"
    assert loaded.conversations[1].dataset_answers == ["dataset answer b0", "dataset answer b1"]
    assert any("1 conversation(s) skipped" in w for w in loaded.warnings)
    assert any("holds 3 usable conversations" in w for w in loaded.warnings)
    c = loaded.conversations[2]
    assert history_messages(c, 1, ["mine"], "model")[1] == {"role": "assistant", "content": "mine"}
    assert history_messages(c, 1, ["mine"], "dataset")[1] == {"role": "assistant", "content": "x"}


def test_packaged_conversations_load_offline() -> None:
    loaded = load_conversations(MultiTurnConfig(enabled=True), 100)
    assert len(loaded.conversations) == 6 and loaded.num_turns == 15 and loaded.source == "packaged:tiny_chat"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"chats.jsonl:1: invalid JSON"),
        ('{"text": "hi"}', r"chats.jsonl:1: no 'conversations' or 'messages' list"),
        ('{"messages": [{"role": "robot", "content": "hi"}]}', r"chats.jsonl:1: message 0 has an unknown role 'robot'"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        load_conversations(MultiTurnConfig(enabled=True, dataset=str(path)), 3)


def test_multi_turn_and_trace_together_are_refused() -> None:
    both = {"multi_turn": {"enabled": True}, "trace": {"enabled": True}}
    with pytest.raises(ConfigError, match=r"multi_turn\.enabled and trace\.enabled are both true"):
        build_config({"backend": {"type": "vllm", "endpoint": "http://h:1/v1", "model": "m"}, "scenario": both}, "test")


# -- the HTTP backend ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("history", ["model", "dataset"])
def test_each_turn_is_sent_with_the_history_so_far(tmp_path: Path, history: str) -> None:
    with FakeOpenAIServer(models=[MODEL], token_delay_s=0.003, tag_answers=True) as server:
        result = http_run(tmp_path, server, history)
        bodies = [b for b in server.bodies if b["messages"][-1]["content"][:1] in "abc" and b["max_tokens"] == TOKENS]
    assert result["status"] == "completed"
    sent = {b["messages"][-1]["content"].split()[0]: b["messages"] for b in bodies}
    assert len(bodies) == len(sent) == 8  # every turn once
    for conversation in CONVERSATIONS:
        count = {"a": 3, "b": 2, "c": 3}[conversation["id"]]
        for turn in range(count):
            key = f"{conversation['id']}{turn}"
            assert sent[key] == expected_messages(conversation, turn, history), key


def test_turns_keep_their_order_under_concurrency(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], token_delay_s=0.003, tag_answers=True) as server:
        result = http_run(tmp_path, server)
        assert server.max_concurrent == 2  # two conversations at a time, never more
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(r["error"] is None for r in rows)
    by_conversation: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["start_s"]):
        by_conversation.setdefault(row["conversation_id"], []).append(row)
    for turns in by_conversation.values():
        assert [t["turn"] for t in turns] == list(range(len(turns)))
        for before, after in itertools.pairwise(turns):
            assert after["start_s"] >= before["end_s"]  # a turn is sent only once the one before has ended
    a, b = by_conversation["a"], by_conversation["b"]
    assert a[0]["start_s"] < b[-1]["end_s"] and b[0]["start_s"] < a[-1]["end_s"]  # conversations overlap
    workload = result["workload"]
    assert workload["kind"] == "multi_turn" and workload["conversations"] == 3 and workload["turns"] == 8
    assert [t["requests"] for t in workload["per_turn"]] == [3, 3, 2]
    # the context grows turn by turn: the server counts every message's words (+3)
    means = [t["mean_prompt_tokens"] for t in workload["per_turn"]]
    assert means[0] < means[1] < means[2]
    conversation_a = next(c for c in workload["per_conversation"] if c["id"] == "a")
    assert conversation_a["requests"] == 3 and conversation_a["completion_tokens"] == 3 * TOKENS
    assert conversation_a["latency_s"] == pytest.approx(sum(t["latency_s"] for t in a))
    assert workload["window_energy_j"] is None and workload["per_conversation"][0]["energy_j"] is None  # not metered


def test_prefix_cache_counters_are_recorded_beside(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], tag_answers=True) as server:
        result = http_run(tmp_path, server)
    cache = result["workload"]["prefix_cache"]
    # A turn's messages start with the previous turn's (sent before): those are the hits (the simulated cache counts
    # words); every message's words are queried.
    queries = hits = 0
    for conversation in CONVERSATIONS:
        turns = {"a": 3, "b": 2, "c": 3}[conversation["id"]]
        sent = [expected_messages(conversation, turn, "model") for turn in range(turns)]
        for turn, messages in enumerate(sent):
            words = [len(m["content"].split()) for m in messages]
            queries += sum(words)
            hits += sum(words[: len(sent[turn - 1])]) if turn else 0
    assert (cache["queries_tokens"], cache["hits_tokens"]) == (queries, hits)
    assert 0 < cache["hit_rate"] < 1 and cache["source"].startswith("measured:server-prometheus")
    assert f"prefix cache  {hits} of {queries} prompt tokens hit" in format_summary(result)


def test_energy_per_turn_and_per_conversation_at_constant_power(tmp_path: Path) -> None:
    """One conversation at a time on a (simulated) 60 W GPU. The ``workload`` block's energies are the requests'
    ``energy_j`` in requests.jsonl (one per-request model): a turn's is its request's, a conversation's the sum of
    its turns', and with the attribution sharing the whole window nothing is left unattributed. By hand: alone in
    flight, a turn draws 60 W over its span; the time with no request in flight (window edges, the client's gaps
    between turns) goes to the turns in proportion to that, so turn i gets window energy x span_i / sum of spans."""
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    with FakeNvml([FakeGpu(power=60.0)]), FakeOpenAIServer(models=[MODEL], token_delay_s=0.01) as server:
        result = http_run(
            tmp_path,
            server,
            backend={"concurrency": 1, "device": "cuda", "device_ids": [0]},
            metrics={"type": "nvml", "idle_seconds": 0},
        )
    workload = result["workload"]
    assert workload["energy_source"] == "estimated:request-attribution"
    assert "energy.request_attribution" in workload["energy_method"]
    window_j = workload["window_energy_j"]
    assert window_j == pytest.approx(result["energy"]["gpu_energy_wh"] * 3600)
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    turns = [r for r in rows if r["phase"] == "generate"]
    assert len(turns) == 8 and all(r["energy_j"] is not None for r in turns)
    # nothing is left over: the turns' energies add up to the window's
    assert workload["unattributed_energy_j"] == pytest.approx(0.0, abs=1e-9 * window_j)
    assert sum(r["energy_j"] for r in turns) + workload["unattributed_energy_j"] == pytest.approx(window_j, rel=1e-9)
    # each turn's figure is its request's energy_j; a conversation's, the sum of its turns'
    for position in workload["per_turn"]:
        mine = [r["energy_j"] for r in turns if r["turn"] == position["turn"]]
        assert position["mean_energy_j"] == pytest.approx(sum(mine) / len(mine), rel=1e-12)
    for conversation in workload["per_conversation"]:
        mine = [r["energy_j"] for r in turns if r["conversation_id"] == conversation["id"]]
        assert len(mine) == conversation["requests"]
        assert conversation["energy_j"] == pytest.approx(sum(mine), rel=1e-12)
    assert sum(c["energy_j"] for c in workload["per_conversation"]) == pytest.approx(window_j, rel=1e-9)
    # hand-computed at constant power: 60 W over its own span plus its share of the gaps, in proportion to the span
    spans = [r["end_s"] - r["start_s"] for r in turns]
    gaps_j = window_j - 60.0 * sum(spans)
    assert gaps_j > 0  # the window's edges and the client's gaps between turns
    for turn, span in zip(turns, spans, strict=True):
        by_hand = 60.0 * span + gaps_j * span / sum(spans)
        assert turn["energy_j"] == pytest.approx(by_hand, rel=0.01)
        assert turn["energy_j"] == pytest.approx(window_j * span / sum(spans), rel=0.01)
    assert workload["conversation_energy_j"]["count"] == 3
    text = format_summary(result)
    assert "multi-turn    3 conversations, 8 turns (history: model); per conversation" in text
    assert "(ESTIMATE: sum of its requests' shares of window energy)" in text and "  by turn       0: " in text


def test_completions_api_is_refused_for_conversations(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL]) as server, pytest.raises(ConfigError, match=r"backend\.api=chat"):
        http_run(tmp_path, server, backend={"api": "completions"})


# -- the PyTorch backend -------------------------------------------------------------------------------------------
def _pytorch_chat(tmp_path: Path, history: str = "model") -> tuple[Any, Any]:
    """The packaged tiny model loaded for the conversations of :func:`write_conversations`; (config, backend)."""
    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend

    config = BenchmarkConfig.model_validate(
        {
            "output_dir": str(tmp_path / "out"),
            "backend": {"type": "pytorch", "model": "packaged:tiny-llama", "no_weights": True, "device": "cpu"},
            "scenario": {
                "num_samples": 2,
                "warmup_runs": 0,
                "generate_kwargs": {"max_new_tokens": 5, "min_new_tokens": 5},
                "multi_turn": {"enabled": True, "dataset": str(write_conversations(tmp_path)), "history": history},
            },
            "metrics": {"enabled": False},
            "reporter": {"output_file": str(tmp_path / "r.csv")},
        }
    )
    backend = PyTorchBackend(config)
    backend.keep_text = True
    backend.load()
    return config, backend


def test_pytorch_sends_its_own_decoded_answers_as_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, backend = _pytorch_chat(tmp_path)
    sent: list[list[dict[str, str]]] = []
    template = backend._tokenizer.apply_chat_template

    def spy(messages: list[dict[str, str]], **kwargs: Any) -> Any:
        sent.append([dict(m) for m in messages])
        return template(messages, **kwargs)

    monkeypatch.setattr(backend._tokenizer, "apply_chat_template", spy)
    from ai_energy_benchmarks.datasets.workload import load_workload

    workload = load_workload(config.scenario)
    assert workload is not None
    records = list(backend.run_workload(workload, config.scenario.generate_kwargs.as_kwargs()))
    backend.close()
    assert [(r.conversation_id, r.turn) for r in records] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    assert all(r.completion_tokens == 5 and r.output_text is not None for r in records)
    assert sent[1] == [
        {"role": "user", "content": "a0 first question of a"},
        {"role": "assistant", "content": records[0].output_text},
        {"role": "user", "content": "a1 second question"},
    ]
    assert sent[2][3] == {"role": "assistant", "content": records[1].output_text}
    assert sent[4][0] == {"role": "system", "content": "be brief"}
    assert sent[4][2] == {"role": "assistant", "content": records[3].output_text}
    assert records[1].prompt_tokens > records[0].prompt_tokens  # the history is in the prompt


def test_pytorch_with_the_datasets_history_decodes_no_answer_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's answers are not sent back (``history: dataset``): kept as token ids, decoded only when asked for
    (by scoring, after the measured windows), never between the turns."""
    from ai_energy_benchmarks.datasets.workload import load_workload

    config, backend = _pytorch_chat(tmp_path, history="dataset")
    decoded: list[Any] = []
    for name in ("decode", "batch_decode"):
        method = getattr(backend._tokenizer, name)
        monkeypatch.setattr(backend._tokenizer, name, lambda *a, _m=method, **k: decoded.append(a) or _m(*a, **k))
    workload = load_workload(config.scenario)
    assert workload is not None
    records = list(backend.run_workload(workload, config.scenario.generate_kwargs.as_kwargs()))
    assert decoded == [] and len(records) == 5
    assert all(r.output_text is None and r.output_ids is not None and len(r.output_ids[0]) == 5 for r in records)
    texts = backend.decode_answers(records[0].output_ids)
    backend.close()
    assert decoded and len(texts) == 1 and isinstance(texts[0], str)  # decoded when asked


def test_pytorch_multi_turn_through_the_runner(tmp_path: Path) -> None:
    config = BenchmarkConfig.model_validate(
        {
            "output_dir": str(tmp_path / "out"),
            "backend": {"type": "pytorch", "model": "packaged:tiny-llama", "no_weights": True, "device": "cpu"},
            "scenario": {
                "num_samples": 2,
                "generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 4},
                "multi_turn": {"enabled": True},
            },
            "metrics": {"enabled": False},
            "reporter": {"output_file": str(tmp_path / "r.csv")},
        }
    )
    result = BenchmarkRunner(config).run()
    assert result["status"] == "completed"
    assert {w["window"] for w in result["repetitions"]} == {"generate-0"}  # no prefill pass
    workload = result["workload"]
    assert workload["source"] == "packaged:tiny_chat" and workload["conversations"] == 2 and workload["turns"] == 5
    assert [r["id"] for r in workload["per_conversation"]] == ["kettle", "garden"]
    assert result["summary"]["successful_prompts"] == 5


@pytest.mark.parametrize(("history", "sent_after_failure"), [("model", False), ("dataset", True)])
def test_a_failed_turn_ends_its_conversation_only_with_the_models_history(
    tmp_path: Path, history: str, sent_after_failure: bool
) -> None:
    rows = [dict(CONVERSATIONS[0]), CONVERSATIONS[1]]
    rows[0]["conversations"] = [dict(m) for m in CONVERSATIONS[0]["conversations"]]
    rows[0]["conversations"][2]["value"] = "a1 [fault:http_400] second question"
    with FakeOpenAIServer(models=[MODEL], tag_answers=True) as server:
        config = runner_config(
            tmp_path,
            server.url + "/v1",
            backend={"concurrency": 2},
            scenario={
                "num_samples": 2,
                "warmup_runs": 0,
                "generate_kwargs": {"max_new_tokens": TOKENS, "min_new_tokens": TOKENS},
                "multi_turn": {
                    "enabled": True,
                    "dataset": str(write_conversations(tmp_path, rows)),
                    "history": history,
                },
            },
        )
        result = BenchmarkRunner(config).run()
    requests = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    sent = sorted((r["conversation_id"], r["turn"], r["error"] is None) for r in requests)
    expected = [("a", 0, True), ("a", 1, False)] + ([("a", 2, True)] if sent_after_failure else [])
    assert sent == [*expected, ("b", 0, True), ("b", 1, True)]
    (run,) = [r for r in result["model"]["http"]["runs"] if r["label"] == "generate-0"]
    assert run["requests_not_sent"] == (0 if sent_after_failure else 1)
    prompts = [json.loads(line) for line in (tmp_path / "out" / "prompts.jsonl").read_text().splitlines()]
    assert [(p["conversation_id"], p["turn"]) for p in prompts] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]


def _conversations_window(records: list[Any], energy_j: float | None) -> dict[str, Any] | None:
    """The ``workload`` block of two conversations (a: 2 turns, b: 1) measured in one generate window, 0-10 s,
    after the attribution has shared the window's energy (``energy_j`` None: the GPU's meter missed the window)."""
    from ai_energy_benchmarks.datasets.conversations import Conversation, ConversationSet
    from ai_energy_benchmarks.datasets.workload import Workload
    from ai_energy_benchmarks.energy.base import EnergyReading, WindowMeasurement
    from ai_energy_benchmarks.results.attribution import attribute_energy
    from ai_energy_benchmarks.results.workload import workload_block

    readings = (
        [] if energy_j is None else [EnergyReading("gpu:0", energy_j, "measured:test", "nvml", start_s=0.0, end_s=10.0)]
    )
    windows = [WindowMeasurement(name="generate-0", duration_s=10.0, repetition=0, readings=readings)]
    chosen = {"gpu": "nvml"}
    expected = {("gpu", "nvml"): frozenset({"gpu:0"})}
    attribute_energy(records, windows, chosen, expected)
    conversations = [Conversation("a", ["a0", "a1"], [None, None]), Conversation("b", ["b0"], [None])]
    workload = Workload("multi_turn", ConversationSet(conversations, "test", 2))
    return workload_block(workload, records, windows, chosen, expected, {})


def test_a_turns_energy_is_its_requests_share_of_the_window_by_hand() -> None:
    """100 J over 0-10 s (10 W). a0 runs 1-3 s, b0 3-4 s, a1 5-8 s, one at a time: 20, 10 and 30 J over their spans;
    the 40 J with nothing in flight (0-1, 4-5, 8-10 s) go to them in proportion (x 100/60): a0 33.33 J, b0 16.67 J,
    a1 50 J. Conversation a: 83.33 J, b: 16.67 J; turn 0's mean (a0, b0): 25 J, turn 1's: 50 J; nothing unattributed."""
    from ai_energy_benchmarks.records import RequestRecord

    spans = {("a", 0): (1.0, 3.0), ("b", 0): (3.0, 4.0), ("a", 1): (5.0, 8.0)}
    records = [
        RequestRecord(i, 1, start, end, 3, 4, first_token_s=start, conversation_id=ident, turn=turn)
        for i, ((ident, turn), (start, end)) in enumerate(spans.items())
    ]
    block = _conversations_window(records, 100.0)
    assert block is not None
    assert [r.energy_j for r in records] == pytest.approx([100 / 3, 50 / 3, 50.0])
    assert block["energy_source"] == "estimated:request-attribution"
    assert block["window_energy_j"] == pytest.approx(100.0) and block["unattributed_energy_j"] == pytest.approx(0.0)
    assert [t["mean_energy_j"] for t in block["per_turn"]] == pytest.approx([25.0, 50.0])
    assert {c["id"]: c["energy_j"] for c in block["per_conversation"]} == pytest.approx({"a": 250 / 3, "b": 50 / 3})
    assert block["conversation_energy_j"]["mean"] == pytest.approx(50.0)


def test_an_unknown_window_energy_leaves_the_turns_energy_null() -> None:
    from ai_energy_benchmarks.records import RequestRecord

    records = [
        RequestRecord(0, 1, 1.0, 3.0, 3, 4, conversation_id="a", turn=0),
        RequestRecord(1, 1, 3.0, 4.0, 3, 4, conversation_id="b", turn=0),
    ]
    block = _conversations_window(records, None)
    assert block is not None and all(r.energy_j is None for r in records)
    assert block["energy_source"] is None and block["window_energy_j"] is None
    assert block["unattributed_energy_j"] is None and block["conversation_energy_j"] is None
    assert block["per_turn"][0]["mean_energy_j"] is None
    assert [c["energy_j"] for c in block["per_conversation"]] == [None, None]


def test_a_backend_that_does_not_run_conversations_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typing import Literal

    from ai_energy_benchmarks.backends import registry
    from ai_energy_benchmarks.backends.base import Backend
    from ai_energy_benchmarks.config.backend import BackendConfig

    class PlainConfig(BackendConfig):
        type: Literal["plain-test"] = "plain-test"

    class Plain(Backend):
        def __init__(self, config: Any) -> None:
            pass

        def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Any:
            return iter(())

        def describe(self) -> dict[str, Any]:
            return {}

        def close(self) -> None:
            pass

        def set_phase(self, label: str) -> None:
            pass

    monkeypatch.setitem(registry._SPECS, "plain-test", registry.BackendSpec(PlainConfig, Plain))
    config = {
        "output_dir": str(tmp_path / "out"),
        "backend": {"type": "plain-test", "model": "m"},
        "scenario": {"multi_turn": {"enabled": True}},
        "metrics": {"enabled": False},
    }
    with pytest.raises(ConfigError, match=r"scenario\.multi_turn: backend type 'plain-test' does not run multi_turn"):
        BenchmarkRunner(config).check()
