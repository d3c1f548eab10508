"""Widgets and cached helpers for the Train page (layout glue, no engine logic).

- `preview(...)`: the dataset the *next* run learns from, with its loss floor and tables;
- `chart_spec(exp)`: the live loss chart, its frame built once per server for the runs shown;
- `progress_text(exp, history)`: the progress line, the same epoch and loss as the chart;
- `fmt(loss)`: a loss as text;
- `show_summary(exp)`: the finished run in words and numbers.

The settings' widgets are in `ui.train_settings` (`PASTE`, `UPLOAD` and `LINK_KEYS`
are re-exported from there).
"""

import math

import pandas as pd
import streamlit as st

from minillm import inspect
from minillm.charts.training import FULL_BATCH_AXIS, loss_chart, past_references, runs_frame
from minillm.charts.specs import inline_datasets
from minillm.bpe import fingerprint
from minillm.data import ambiguous_contexts, build_dataset, loss_floor
from minillm.experiment import SPLIT_SEED, TrainSettings, make_tokenizer
from minillm.heldout import split_lines
from ui import class_mode, model_state
from ui.bounded_cache import BoundedCache
from ui.train_settings import KEEP, LINK_KEYS, PASTE, UPLOAD  # noqa: F401 (re-exported)


def fmt(loss: float) -> str:
    """A loss as the page shows it: 4 decimals, or 3 significant digits once it blew up."""
    return f"{loss:.4f}" if abs(loss) < 1e4 else f"{loss:.3g}"


PREVIEW_ENTRIES, PREVIEW_MB = 16, 200  # the shared previews: few, and small together
WINDOWS_SHOWN = 1_000  # rows of the windows table (the count above it says how many in all)


@st.cache_resource(show_spinner=False)
def _previews() -> BoundedCache:
    return BoundedCache(PREVIEW_ENTRIES, PREVIEW_MB * 1e6)


def preview(lines, tokenizer, block_size, eos, loss_on, bpe=None, valid_share=0.0):
    """The dataset the next run will learn from, its floor and tables (read-only, shared).

    The windows of the lines it trains on: `valid_share` of them are held out as the run
    will hold them out (`minillm.experiment.SPLIT_SEED`), so the floor and the budget check
    are the run's own. The vocabulary is fitted on all lines, as the run's.

    Shared by the whole server and keyed by what decides the data: the text itself and, for
    a BPE, its fingerprint (two students' BPEs can have the same name and merge count).
    """
    key = (lines, tokenizer, block_size, eos, loss_on, fingerprint(bpe) if bpe else None,
           valid_share)

    def make():
        train = split_lines(lines, valid_share, seed=SPLIT_SEED).train
        data = build_dataset(train, make_tokenizer(TrainSettings(lines, tokenizer=tokenizer), bpe),
                             block_size, eos)
        vocab = pd.DataFrame({"id": range(data.vocab_size),
                              "token": [data.label(i) for i in range(data.vocab_size)]})
        windows = pd.DataFrame(data.windows_table(limit=WINDOWS_SHOWN))
        return (data, loss_floor(data, loss_on), vocab, windows,
                pd.DataFrame(ambiguous_contexts(data, loss_on)))

    return _previews().get(key, make)


@st.cache_data(max_entries=256, show_spinner=False)
def _loss_chart_frame(floor: float, start_loss: float, epochs: int, names: tuple, right: int,
                      held_out: bool = False, heldout_floor: float | None = None,
                      x_title: str = FULL_BATCH_AXIS, past: tuple = ()) -> dict:
    """The loss chart's spec for these runs, without their points (shared by every session).
    `past`: the earlier runs' (name, floor, start), `minillm.charts.training.past_references`."""
    skeleton = pd.DataFrame({"run": list(names), "epoch": right, "loss": floor,
                             "current": [name.startswith("this run") for name in names]})
    spec = loss_chart(skeleton, floor=floor, start_loss=start_loss, epochs=epochs,
                      held_out=held_out, heldout_floor=heldout_floor, x_title=x_title,
                      past=past).to_dict()
    return inline_datasets(spec, keep=spec["data"]["name"])  # only the curves change per tick


def x_title(exp) -> str:
    """What one epoch of this run is: a pass over all the windows, or one step on a batch."""
    batch = exp.trainer.batch_size
    return FULL_BATCH_AXIS if batch is None else f"Epoch (one step on {batch} windows drawn at random)"


def chart_spec(exp, history=None):
    """The loss chart as a Vega-Lite spec. Altair's validation is slow next to a tick, so the
    chart's frame is built once per distinct (floor, runs shown, length) for the whole server: thirty
    students training the notebook's run share one. Each rerun swaps in the curves' rows.

    `history`: the losses to draw (default: the trainer's now); the page passes the copy its
    progress line reads, so both say the same epoch even if another tab trains meanwhile."""
    past = model_state.past_runs()
    history = list(exp.trainer.history) if history is None else history
    valid = [(e, v) for e, v in exp.trainer.valid_history if e <= len(history)]
    runs = runs_frame(history, exp.settings.label(), past, valid)
    names = tuple(dict.fromkeys(runs["run"]))
    right = max(exp.trainer.epochs, int(runs["epoch"].max()) if len(runs) else 1)
    spec = _loss_chart_frame(exp.floor, exp.start_loss, exp.trainer.epochs, names, right,
                             exp.valid is not None, exp.heldout_floor_loss, x_title(exp),
                             past_references(past))
    return {**spec, "datasets": {**spec["datasets"], spec["data"]["name"]: runs}}


def progress_text(exp, history) -> str:
    """The line above the chart: the epoch the drawn curve has reached, and one loss.

    While training, the loss is the curve's last point (the loss at the start of that epoch,
    as the notebook prints it). Once the run is over it is the summary's "Final training
    loss": all the training windows, after the last step. The same figure as the summary's,
    never a second one beside it.
    """
    trainer = exp.trainer
    text = f"Epoch {len(history)} of {trainer.epochs}"
    if not history:
        return text
    if trainer.done and len(history) == trainer.epoch:
        return f"{text} · final training loss {fmt(exp.summary()['loss'])}"
    return f"{text} · loss {fmt(history[-1])}"


def show_summary(exp) -> None:
    """The finished run in words: done (or why it stopped), the numbers, what they mean."""
    result = exp.summary()
    verdicts = result["verdicts"]
    held_out = "valid_loss" in result
    if result["stopped_reason"]:
        st.warning(result["stopped_reason"], icon=":material/warning:")
    else:
        st.success(f"Training done: {result['epochs']} epochs in {result['seconds']:.1f} s.",
                   icon=":material/check_circle:")
    cols = st.columns(5 if "honest_loss" in result else 4)
    cols[0].metric("Final training loss", fmt(result["loss"]),
                   help="The loss on all the training windows after the last step (the line "
                        "above the chart says the same)")
    cols[1].metric("Loss floor", f"{result['floor']:.4f}")
    cols[2].metric("Parameters", f"{result['parameters']:,}")
    cols[3].metric("Training time", f"{result['seconds']:.1f} s")
    if "honest_loss" in result:
        cols[4].metric("Honest loss", fmt(result["honest_loss"]),
                       help="The loss with later words hidden, as when the model writes")
    _bits_metrics(result)
    said = result["verdict_sentences"]  # the engine's sentences: a notebook prints the same
    if "peeking" in verdicts:
        st.error(said["peeking"], icon=":material/visibility:")
    else:
        learned = math.floor(result["learned"] * 1000) / 10
        on = " from its training lines" if held_out else ""
        st.markdown(f"#### The model has learned {learned:.1f}% of what can be learned{on}.")
    floor_means = ("the floor for memorising this data:** the best any model can do on the "
                   "lines it trained on" if held_out else "the best any model can do on this "
                   "data:** after some contexts several next words really occur (see "
                   "*Why the floor > 0* below), so no model can be sure")
    st.markdown(
        f"It started at ln|V| = {result['start_loss']:.3f} (a blind guess among "
        f"{result['vocab_size']} ids). **The floor, {result['floor']:.4f}, is {floor_means}.")
    if "lr_too_high" in verdicts:
        st.warning(said["lr_too_high"], icon=":material/trending_up:")
    if held_out:
        _held_out_sentences(exp, result)
    else:
        st.info(f"No held-out lines: {result['valid_reason']} So, as in the notebook, every "
                "number here is on the text the model trained on.", icon=":material/info:")
    _block_size_sentence(exp)
    class_mode.post_button(exp)  # in a class: post this run to the class board in one click


def _bits_metrics(result: dict) -> None:
    """The losses again, as bits per character of text: the unit any two tokenizers share."""
    shown = [("Training bits/char", result["train_bits"],
              "The training loss as bits per character of the training lines")]
    if "valid_loss" in result:
        shown[:0] = [("Held-out loss", result["valid_loss"], "The loss on lines it never saw")]
        shown.append(("Held-out bits/char", result["valid_bits"],
                      "The held-out loss as bits per character of the held-out lines"))
    if result["heldout_floor_bits"] is not None:
        shown.append(("Held-out floor bits/char", result["heldout_floor_bits"],
                      "The held-out floor: the grammar's own surprise per character of the "
                      "held-out lines, in bits. No model can do better on new text from the "
                      "same rules"))
    cols = st.columns(4)
    for col, (label, value, help_text) in zip(cols, shown):
        if value is not None:
            col.metric(label, fmt(value) if label == "Held-out loss" else f"{value:.3f}",
                       help=help_text)


def _held_out_sentences(exp, result: dict) -> None:
    """What the held-out numbers say: overfitting, or how close to the language's floor."""
    lines = len(exp.split.valid)
    if "overfitting" in result["verdicts"]:
        st.warning(result["verdict_sentences"]["overfitting"], icon=":material/trending_up:")
    else:
        gap = result["valid_loss"] - result["loss"]
        closeness = ("about as well as" if abs(gap) < 0.05 else
                     "better than" if gap < 0 else "less well than")
        st.markdown(f"On the {lines:,} held-out lines, which it never trained on, its loss is "
                    f"{result['valid_loss']:.4f} (training lines: {result['loss']:.4f}): it "
                    f"predicts new text {closeness} the text it learned from.")
    floor = result["heldout_floor_bits"]
    if floor is not None:
        over = result["valid_bits"] - floor
        st.markdown(f"**In bits per character: {result['valid_bits']:.3f} on the held-out "
                    f"lines, against the language's floor of {floor:.3f}** (the grammar's own "
                    "surprise: no model can do better on new stories). "
                    + (f"It is {over:.3f} bits per character above it, "
                       f"{result['valid_bits'] / floor:.2f} times the floor."
                       if floor > 0 else ""))


def _block_size_sentence(exp) -> None:
    """For generated stories: say so when the window cannot reach back to the cast's name."""
    if exp.story_settings is None:
        return
    block = exp.settings.block_size
    intro = inspect.first_sentence_tokens(exp.split.train, exp.tokenizer)
    if intro is None or block >= intro:
        return
    unit = getattr(exp.tokenizer, "unit", "token")
    reach = (f"A block size of {intro} or more lets it look back that far." if intro <= 16 else
             f"The block size goes up to 16, so with {unit}s a first sentence never fits: "
             "with words it does.")
    st.info(f"The block size is {block} {unit}s, but a story's first sentence has at least "
            f"{intro}: by the story's next sentence the name and whether it is about a girl, a "
            "boy or two friends are out of sight, so the model cannot know whether to write "
            f"“she”, “he” or “they”, nor which name comes back. {reach}",
            icon=":material/visibility_off:")
