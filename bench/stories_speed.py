"""Story generation speed, against the random numbers it needs, in the same run.

    python bench/stories_speed.py [--repeats 5]

Generates 10,000 and 50,000 sentences with the default settings (median of `repeats`
runs each) and prints sentences per second. The reference, timed the same way in the same
process, is drawing the same number of random numbers from ``random.Random`` with nothing
else: the dice alone, which no generator can beat. Their ratio is what walking the grammar
and recording each choice's log-probability costs on top. The parser (used to check a
model's sentences) is timed on the same text. Goal (issue: held-out text): 10,000 sentences
well under a second. Nothing here asserts: it prints.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minillm.stories import StoryGrammar, StorySettings  # noqa: E402

GOAL_SECONDS_PER_10K = 1.0


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def draw(n: int) -> None:
    rng = random.Random(0)
    for _ in range(n):
        rng.random()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = StorySettings()
    grammar = StoryGrammar(settings)
    print(f"settings: {settings}")
    for n in (10_000, 50_000):
        generate_s = median_seconds(lambda: grammar.generate(n), args.repeats)
        text = grammar.generate(n)
        derivations = grammar.parse_lines(text.lines)
        # Every choice with more than one alternative used one random number.
        n_draws = sum(1 for d in derivations for c in d.choices if c.logp != 0.0)
        dice_s = median_seconds(lambda: draw(n_draws), args.repeats)
        parse_s = median_seconds(lambda: grammar.parse_lines(text.lines), max(1, args.repeats // 2))
        print(
            f"{n:>6,} sentences ({n_draws:,} choices, {sum(map(len, text.lines)):,} characters): "
            f"generate {generate_s * 1e3:7.1f} ms = {n / generate_s:9,.0f} sentences/s; "
            f"dice alone {dice_s * 1e3:6.1f} ms (generate / dice = {generate_s / dice_s:4.1f}x); "
            f"parse {parse_s * 1e3:7.1f} ms = {n / parse_s:8,.0f} sentences/s "
            f"({parse_s / generate_s:4.1f}x generate)"
        )
        if n == 10_000:
            per_10k = generate_s
    verdict = "met" if per_10k < GOAL_SECONDS_PER_10K else "NOT met"
    print(
        f"goal: 10,000 sentences well under {GOAL_SECONDS_PER_10K:.0f} s: {per_10k:.3f} s, {verdict} "
        f"(floor of this text: {text.bits_per_character():.4f} bits per character, {text.entropy_kind})"
    )


if __name__ == "__main__":
    main()
