"""The class board's numbers: what a finished run posts, and what the board shows about them.

Pure Python (no Streamlit), so a notebook posts and reads a board exactly as the app does:

    >>> from minillm.experiment import Experiment, TrainSettings
    >>> exp = Experiment(TrainSettings(epochs=20)); _ = exp.trainer.run()
    >>> record = run_record(exp, sample_chars=500)
    >>> sorted(record)
    ['bits_per_char', 'final_loss', 'floor', 'heldout_loss', 'parameters', 'sample', 'settings']
    >>> "lines" in record["settings"]      # the corpus travels in the model file, not here
    False

- `run_record(exp, ...)`: the keyword arguments of `ClassBoard.post_run` for a run (settings
  without the corpus text, parameter count, final and held-out loss, floor, bits per
  character where known, one sample generation cut to the board's limit).
- `runs_frame(runs)`: the board's table, one row per posted run (text stays text: the page
  shows it in a table, never as Markdown or HTML).
- `question_of(run)` and `best_per_question(runs)`: a run posted from a lesson link carries the
  lesson's instruction as its question; the best run of each question is the one with the
  lowest held-out loss (the training loss where there is no held-out part).
- `colour_choices(runs)`: the settings that differ between the runs, the ones worth colouring by.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Sequence

import pandas as pd

#: The board's own fields in a run's settings, beside the Train page's (`TrainSettings`).
QUESTION = "question"  # the lesson's instruction the run answers ("" for none)
LABEL = "label"  # `TrainSettings.label()`: what differs from the notebook
NO_QUESTION = "(no lesson)"
SAMPLE_TOKENS = 15  # new tokens in the posted sample
SETTING_NAMES = ("tokenizer", "block_size", "d_model", "n_heads", "n_layers", "lr", "epochs",
                 "seed", "eos", "loss_on", "causal", "batch_size", "corpus_name")


def sample_text(exp, max_chars: int) -> str:
    """One generation of the run (the first suggested prompt, seed 0), cut to `max_chars`."""
    from minillm.inspect import prompt_suggestions
    from minillm.sample import generate

    prompt = prompt_suggestions(exp.dataset)[0]
    text = generate(exp.model, exp.dataset, prompt, max_new_tokens=SAMPLE_TOKENS, seed=0).text
    return text if len(text) <= max_chars else text[: max(0, max_chars - 1)] + "…"


def run_record(exp, sample_chars: int, question: str = "") -> dict:
    """What the board keeps about a finished run (`ClassBoard.post_run`'s keywords, no model).

    The settings are the run's `TrainSettings` without ``lines`` (a corpus is up to 200 kB;
    the posted model file carries it), plus the run's label and the lesson's question.
    """
    summary = exp.summary()
    settings = {k: v for k, v in asdict(exp.settings).items() if k != "lines"}
    settings[LABEL] = exp.settings.label()
    settings[QUESTION] = question or ""
    bits = summary.get("valid_bits")
    if bits is None:
        bits = summary.get("train_bits")
    return dict(
        settings=settings,
        parameters=int(summary["parameters"]),
        final_loss=float(summary["loss"]),
        heldout_loss=_finite(summary.get("valid_loss")),
        floor=float(summary["floor"]),
        bits_per_char=_finite(bits),
        sample=sample_text(exp, sample_chars),
    )


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def question_of(run) -> str:
    """The lesson question a posted run answers, or NO_QUESTION."""
    text = run.settings.get(QUESTION) if isinstance(run.settings, dict) else None
    return text.strip() if isinstance(text, str) and text.strip() else NO_QUESTION


def score_of(run) -> float:
    """What "best" means on the board: the held-out loss, else the final training loss."""
    return run.heldout_loss if run.heldout_loss is not None else run.final_loss


def setting_text(value) -> str:
    """A setting's value as the board writes it (1e-3 stays 0.001, True is on)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def runs_frame(runs: Sequence) -> pd.DataFrame:
    """One row per run, oldest first: the board's sortable table (and the chart's data)."""
    rows = []
    for run in runs:
        settings = run.settings if isinstance(run.settings, dict) else {}
        rows.append({
            "run": run.id,
            "nickname": run.nickname,
            "question": question_of(run),
            "settings": str(settings.get(LABEL, "")) or "notebook settings",
            "parameters": run.parameters,
            "final loss": run.final_loss,
            "held-out loss": run.heldout_loss,
            "floor": run.floor,
            "bits per char": run.bits_per_char,
            "sample": run.sample,
            "posted": run.created,
            "model": run.has_model,
            "mine": run.mine,
            "hidden": run.hidden,
            **{f"setting: {name}": setting_text(settings.get(name)) for name in SETTING_NAMES},
        })
    columns = ["run", "nickname", "question", "settings", "parameters", "final loss",
               "held-out loss", "floor", "bits per char", "sample", "posted", "model", "mine",
               "hidden", *(f"setting: {name}" for name in SETTING_NAMES)]
    return pd.DataFrame(rows, columns=columns)


def best_per_question(runs: Sequence) -> list:
    """The best run of each question (lowest `score_of`; the earlier post on a tie), in the
    order the questions were first answered."""
    best: dict[str, object] = {}
    for run in runs:
        question = question_of(run)
        if question not in best or score_of(run) < score_of(best[question]):
            best[question] = run
    return list(best.values())


def colour_choices(runs: Sequence) -> list[str]:
    """The settings (of SETTING_NAMES) whose values differ between the runs, most varied first;
    "settings" (the whole label) always comes first."""
    counts = []
    for name in SETTING_NAMES:
        values = {setting_text(r.settings.get(name)) for r in runs if isinstance(r.settings, dict)}
        if len(values) > 1:
            counts.append((-len(values), SETTING_NAMES.index(name), name))
    return ["settings"] + [name for _, _, name in sorted(counts)]


def still_training(roster: Sequence[tuple[str, object]], runs: Sequence) -> list[str]:
    """Nicknames that joined the class and have not posted a visible run yet, in joining order."""
    posted = {run.nickname for run in runs}
    return [nickname for nickname, _joined in roster if nickname not in posted]
