"""How well `minillm.budget` estimates a run's cost: estimate against measurement, per setting.

For each configuration a fresh process builds the run, trains a few epochs and reports the CPU
time of one epoch, the memory one step added to the process's peak (VmHWM) and, where the
run holds text out, the CPU time of one held-out check (the trainer scores the held-out windows
at the start and about every 50th of the run; the budget counts those checks too). The ratio
measured / estimated should stay below 1 (the estimate errs on the side of refusing), and not
far below it (else the server refuses runs it could afford).

    python bench/budget_check.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = [  # (name, tokenizer, lines, block, d_model, heads, loss_on)
    ("notebook", "word", "cats", 5, 32, 2, "last"),
    ("country, chars, every", "character", "country", 16, 64, 4, "every"),
    ("big words, last", "word", "big", 16, 64, 4, "last"),
    ("big words, every", "word", "big", 8, 32, 2, "every"),
    ("big chars, every", "character", "big", 16, 32, 4, "every"),
    ("big words, every, wide", "word", "big", 4, 128, 8, "every"),
    ("country words, last", "word", "country", 16, 128, 16, "last"),
    ("big chars, last", "character", "big", 16, 128, 16, "last"),
    ("stories chars, batch 32", "character", "stories", 64, 64, 4, "every"),
    ("stories words, batch 32", "word", "stories", 16, 64, 4, "every"),
]


def big_corpus() -> tuple[str, ...]:
    import random

    rng = random.Random(0)
    words = [f"w{i}" for i in range(1500)]
    return tuple(" ".join(rng.choice(words) for _ in range(8)) for _ in range(600))


def peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1])
    return 0


def measure(config) -> dict:
    from minillm.budget import run_cost
    from minillm.corpus import CATS_AND_DOGS, COUNTRY_STYLE
    from minillm.experiment import Experiment, TrainSettings

    name, tokenizer, corpus, block, d, heads, loss_on = config
    if corpus == "stories":  # the Train page's default stories, in seeded mini-batches
        from minillm.stories import StorySettings, generate_stories

        lines = generate_stories(StorySettings(), 2_000).by_story()[0]
    else:
        lines = {"cats": CATS_AND_DOGS, "country": COUNTRY_STYLE, "big": big_corpus()}[corpus]
    settings = TrainSettings(lines=lines, tokenizer=tokenizer, block_size=block, d_model=d,
                             n_heads=heads, loss_on=loss_on, causal=loss_on == "every", epochs=20,
                             batch_size=32 if corpus == "stories" else 0)
    exp = Experiment(settings)
    import torch._dynamo  # noqa: F401  (what the first optimizer step imports, once)

    before = peak_kb()
    exp.trainer.run(1)  # the first step: the memory it adds to the peak
    step_bytes = max(0, peak_kb() - before) * 1024
    start = time.thread_time()
    exp.trainer.run(3)
    epoch = (time.thread_time() - start) / 3
    valid = len(exp.valid) if exp.valid is not None else 0
    cost = run_cost(settings, len(exp.dataset), exp.dataset.vocab_size, valid_windows=valid)
    check = None
    if valid:
        from minillm.train import mean_loss

        start = time.thread_time()
        for _ in range(3):
            mean_loss(exp.model, exp.valid)
        check = (time.thread_time() - start) / 3
    return {"name": name, "windows": len(exp.dataset), "vocab": exp.dataset.vocab_size,
            "epoch_measured": epoch, "epoch_estimated": cost.epoch_seconds,
            "step_measured": step_bytes, "step_estimated": cost.step_bytes,
            "check_measured": check, "check_estimated": cost.eval_seconds}


def main() -> None:
    if len(sys.argv) > 1:  # child: one configuration
        print(json.dumps(measure(CONFIGS[int(sys.argv[1])])))
        return
    print(f"{'configuration':24} {'windows':>8} {'V':>6}  {'epoch CPU meas/est':>22}  "
          f"{'step memory meas/est':>24}  {'held-out check meas/est':>26}")
    worst = 0.0
    for i in range(len(CONFIGS)):
        out = subprocess.run([sys.executable, __file__, str(i)], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ratio_t = r["epoch_measured"] / r["epoch_estimated"]
        ratio_m = r["step_measured"] / r["step_estimated"]
        worst = max(worst, ratio_t, ratio_m)
        check = "no held-out text"
        if r["check_measured"] is not None:
            ratio_c = r["check_measured"] / r["check_estimated"]
            worst = max(worst, ratio_c)
            check = (f"{r['check_measured'] * 1e3:8.1f}/{r['check_estimated'] * 1e3:7.1f} ms "
                     f"{ratio_c:4.2f}x")
        print(f"{r['name']:24} {r['windows']:>8,} {r['vocab']:>6,}  "
              f"{r['epoch_measured'] * 1e3:8.1f}/{r['epoch_estimated'] * 1e3:7.1f} ms {ratio_t:4.2f}x"
              f"  {r['step_measured'] / 1e6:8.1f}/{r['step_estimated'] / 1e6:7.1f} MB {ratio_m:4.2f}x"
              f"  {check:>26}")
    print(f"budget_check: worst measured/estimated {worst:.2f}x (goal: at most 1.0x)")


if __name__ == "__main__":
    main()
