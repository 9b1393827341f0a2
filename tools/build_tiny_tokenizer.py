"""Build the tokenizer for the packaged ``tiny-llama`` synthetic model.

Trains a byte-level BPE tokenizer (vocab size 2048) with the ``tokenizers``
library on the packaged quickstart prompts and writes ``tokenizer.json`` and
``tokenizer_config.json`` into ``ai_energy_benchmarks/data/models/tiny-llama/``.

The output is deterministic: the corpus is read in file order, training is
single-pass BPE with fixed settings, and the JSON files are written with
sorted, fixed formatting.

Usage::

    python tools/build_tiny_tokenizer.py [--prompts PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "ai_energy_benchmarks" / "data"
DEFAULT_PROMPTS = DATA_DIR / "prompts" / "quickstart.jsonl"
DEFAULT_OUT = DATA_DIR / "models" / "tiny-llama"

VOCAB_SIZE = 2048
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = [BOS, EOS, PAD]
MODEL_MAX_LENGTH = 512
CORPUS_REPEATS = 3

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}System: "
    "{% elif message['role'] == 'user' %}User: "
    "{% else %}Assistant: {% endif %}"
    "{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def read_prompts(path: Path) -> list[str]:
    """Return the ``text`` field of every non-empty line of a JSONL file."""
    texts: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                texts.append(str(json.loads(line)["text"]))
    if not texts:
        raise ValueError(f"no prompts found in {path}")
    return texts


def corpus(texts: list[str], repeats: int = CORPUS_REPEATS) -> Iterator[str]:
    """Yield the prompts ``repeats`` times (plus a lower-cased copy) for coverage."""
    for _ in range(repeats):
        yield from texts
    for text in texts:
        yield text.lower()


def build_tokenizer(texts: list[str]) -> Tokenizer:
    """Train a byte-level BPE tokenizer on ``texts``."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(texts), trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A $B:1",
        special_tokens=[(BOS, bos_id)],
    )
    return tokenizer


def tokenizer_config() -> dict[str, object]:
    """Return the ``tokenizer_config.json`` contents for transformers."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "padding_side": "left",
        "truncation_side": "left",
        "model_max_length": MODEL_MAX_LENGTH,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "chat_template": CHAT_TEMPLATE,
    }


def write(tokenizer: Tokenizer, out_dir: Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tok_json = json.loads(tokenizer.to_str())
    (out_dir / "tokenizer.json").write_text(json.dumps(tok_json, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    tokenizer = build_tokenizer(read_prompts(args.prompts))
    write(tokenizer, args.out)
    ids = {tok: tokenizer.token_to_id(tok) for tok in SPECIAL_TOKENS}
    print(f"wrote {args.out} (vocab {tokenizer.get_vocab_size()}, special ids {ids})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
