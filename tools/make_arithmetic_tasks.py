"""Generate the packaged arithmetic task set: word problems with known answers, for energy per correct answer.

Each line of ``ai_energy_benchmarks/data/prompts/arithmetic.jsonl`` is ``{"text": <problem>, "answer": <worked
solution ending "#### <number>">}`` (GSM8K's answer format), so ``scenario.scorer: {type: numeric}`` scores it.
The problems are made here from templates with numbers drawn from a seeded ``random.Random``: the same seed and
count give the same file, byte for byte.

Usage::

    python tools/make_arithmetic_tasks.py [--seed 18] [--count 100] [--out PATH]
    python tools/make_arithmetic_tasks.py --check   # exit 1 when the packaged file differs from a regeneration
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "ai_energy_benchmarks" / "data" / "prompts" / "arithmetic.jsonl"
DEFAULT_SEED = 18
DEFAULT_COUNT = 100

NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Imani", "Jonas", "Keiko", "Luis")
ITEMS = ("apples", "marbles", "stickers", "pencils", "cookies", "stamps", "shells", "cards")
INSTRUCTION = " Give the final answer as a number on the last line, after '####'."

Task = tuple[str, str, int]


def _gain_loss(rng: random.Random) -> Task:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(5, 60), rng.randint(2, 40)
    c = rng.randint(1, a + b - 1)
    answer = a + b - c
    text = f"{name} has {a} {item}, gets {b} more, then gives {c} away. How many {item} does {name} have now?"
    return text, f"{a} + {b} = {a + b}; {a + b} - {c} = {answer}.", answer


def _boxes(rng: random.Random) -> Task:
    item = rng.choice(ITEMS)
    per, boxes = rng.randint(3, 25), rng.randint(2, 12)
    answer = per * boxes
    return (
        f"A box holds {per} {item}. How many {item} are there in {boxes} full boxes?",
        f"{per} x {boxes} = {answer}.",
        answer,
    )


def _sharing(rng: random.Random) -> Task:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    each, friends = rng.randint(2, 20), rng.randint(2, 9)
    total = each * friends
    return (
        f"{name} shares {total} {item} equally among {friends} friends. How many {item} does each friend get?",
        f"{total} / {friends} = {each}.",
        each,
    )


def _distance(rng: random.Random) -> Task:
    speed, hours = rng.randint(40, 120), rng.randint(2, 9)
    answer = speed * hours
    return (
        f"A train travels at {speed} km per hour for {hours} hours. How many kilometres does it travel?",
        f"{speed} x {hours} = {answer} km.",
        answer,
    )


def _wages(rng: random.Random) -> Task:
    name = rng.choice(NAMES)
    rate, hours, days = rng.randint(8, 30), rng.randint(2, 8), rng.randint(2, 6)
    answer = rate * hours * days
    return (
        f"{name} earns ${rate} per hour and works {hours} hours a day for {days} days. How many dollars does "
        f"{name} earn in total?",
        f"{rate} x {hours} = {rate * hours} per day; {rate * hours} x {days} = {answer}.",
        answer,
    )


def _change(rng: random.Random) -> Task:
    name = rng.choice(NAMES)
    price, count = rng.randint(2, 15), rng.randint(2, 6)
    cost = price * count
    note = next(n for n in (20, 50, 100) if n > cost)
    answer = note - cost
    return (
        f"Pens cost ${price} each. {name} buys {count} pens and pays with a ${note} note. How many dollars of "
        f"change does {name} get?",
        f"{price} x {count} = {cost}; {note} - {cost} = {answer}.",
        answer,
    )


TEMPLATES: tuple[Callable[[random.Random], Task], ...] = (_gain_loss, _boxes, _sharing, _distance, _wages, _change)


def generate(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> list[dict[str, str]]:
    """``count`` problems from ``seed``: ``{"text", "answer"}`` each, the answer ending ``#### <number>``."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        text, working, answer = TEMPLATES[index % len(TEMPLATES)](rng)
        rows.append({"text": text + INSTRUCTION, "answer": f"{working}\n#### {answer}"})
    return rows


def render(rows: list[dict[str, str]]) -> str:
    """The JSON Lines text written (UTF-8, one object per line, keys in order)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    text = render(generate(args.seed, args.count))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if current != text:
            print(f"{args.out} differs from a regeneration: python tools/make_arithmetic_tasks.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.count} problems to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
