"""The PyTorch backend's session workloads (``Backend.run_workload``): multi-turn conversations, turn by turn
through the chat template with the history so far, and trace replay at the trace's arrival times.

:class:`PyTorchSessions` sits between :class:`~ai_energy_benchmarks.backends.base.Backend` and
:class:`~ai_energy_benchmarks.backends.pytorch.PyTorchBackend`, which loads what it reads (model, tokenizer, device,
formatter) and runs each trace request through its ``run()``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.http_metrics import schedule_drift
from ai_energy_benchmarks.backends.pytorch_generate import FirstTokenTimer, count_new_tokens, open_assistant_turn
from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.datasets.conversations import history_messages, with_history
from ai_energy_benchmarks.datasets.traces import Trace
from ai_energy_benchmarks.datasets.workload import Workload
from ai_energy_benchmarks.exceptions import BackendError, DatasetError
from ai_energy_benchmarks.formatters.base import Formatter


class PyTorchSessions(Backend):
    """Conversations and trace replays on a loaded local model (the attributes below are set by the backend)."""

    keep_text: bool
    _scenario: ScenarioConfig
    _model: Any
    _tokenizer: Any
    _torch: Any
    _device: str
    _context_tokens: int | None
    _formatter: Formatter
    _phase: str
    _drift: dict[str, dict[str, Any]]

    def run_workload(self, workload: Workload, generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Conversations one at a time, turn by turn: each turn is the chat template applied to the history so far
        (the model's own decoded answers, or the dataset's) and the turn; one record per turn."""
        if self._model is None:
            raise BackendError("PyTorchBackend.run_workload() called before load()")
        if workload.trace is not None:
            yield from self._replay(workload.trace, generate_kwargs)
            return
        assert workload.conversations is not None
        torch = self._torch
        scenario = self._scenario
        kwargs = dict(generate_kwargs)
        kwargs.setdefault("pad_token_id", self._tokenizer.pad_token_id)
        max_new_tokens = int(kwargs.get("max_new_tokens", 20))
        use_streamer = int(kwargs.get("num_beams") or 1) == 1
        index = 0
        for conversation in workload.conversations.conversations:
            answers: list[str | None] = []
            for turn, text in enumerate(conversation.user_turns):
                formatted = self._formatter.format(text, scenario.reasoning, scenario.reasoning_params)
                history = history_messages(conversation, turn, answers, workload.history)[:-1]
                rendered = self._tokenizer.apply_chat_template(
                    with_history(list(formatted.messages), history),
                    add_generation_prompt=True,
                    tokenize=False,
                    **formatted.chat_template_kwargs,
                )
                rendered = open_assistant_turn(str(rendered), formatted.assistant_prefix)
                encoded = self._tokenizer([rendered], return_tensors="pt", add_special_tokens=False).to(self._device)
                input_length = int(encoded["input_ids"].shape[1])
                if self._context_tokens is not None and input_length + max_new_tokens > self._context_tokens:
                    raise DatasetError(
                        f"scenario.multi_turn: conversation '{conversation.id}' turn {turn} has {input_length} tokens "
                        f"with its history; with max_new_tokens={max_new_tokens} it exceeds the model's context of "
                        f"{self._context_tokens} tokens (set scenario.multi_turn.max_turns)"
                    )
                timer = FirstTokenTimer(self.synchronize)
                start_s = time.perf_counter()
                with torch.inference_mode():
                    output = self._model.generate(**encoded, **kwargs, streamer=timer if use_streamer else None)
                self.synchronize()
                end_s = time.perf_counter()
                answer_ids = output[:, input_length:].tolist()
                completion = count_new_tokens(answer_ids, self._model.generation_config.eos_token_id)
                answer_ids[0] = answer_ids[0][:completion]
                # The model's answer is decoded here only when the next turn sends it as history; otherwise it is
                # kept as ids (for a scorer) and decoded after the measured windows.
                answer = self.decode_answers(answer_ids)[0] if workload.history == "model" else None
                answers.append(answer)
                yield RequestRecord(
                    index=index,
                    num_prompts=1,
                    start_s=start_s,
                    end_s=end_s,
                    first_token_s=timer.first_token_s,
                    prompt_tokens=input_length,
                    completion_tokens=completion,
                    output_text=answer if self.keep_text else None,
                    output_ids=answer_ids if self.keep_text and answer is None else None,
                    conversation_id=conversation.id,
                    turn=turn,
                )
                index += 1

    def _replay(self, trace: Trace, generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """A trace one request at a time: each starts at its arrival time, or as soon as the one before has ended
        when that is later (counted as held, not as drift), with its output length fixed to the trace's."""
        label = self._phase
        drift_s: list[float] = []
        held = 0
        start = time.perf_counter()
        previous_end = start
        for index, (entry, prompt) in enumerate(zip(trace.entries, trace.prompts, strict=True)):
            due = start + entry.offset_s
            late = previous_end > due  # the request before was still running when this one arrived
            if late:
                held += 1
            else:
                while (left := due - time.perf_counter()) > 0:
                    time.sleep(left)
            length = entry.output_length
            kwargs = generate_kwargs | {"max_new_tokens": length, "min_new_tokens": length}
            for record in self.run([prompt], kwargs):
                if not late:
                    drift_s.append(record.start_s - due)
                record.index = index
                record.conversation_id = entry.session_id
                previous_end = record.end_s
                yield record
        self._drift[label] = schedule_drift(drift_s, held)
