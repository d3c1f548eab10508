"""Widgets and cached helpers for the Train page (layout glue, no engine logic).

- `choose_corpus()`: preset, pasted or uploaded sentences, checked by `minillm.corpus`;
- `preview(...)`: the dataset the *next* run learns from, with its loss floor and tables;
- `chart_spec(exp)`: the live loss chart, its frame built once per server for the runs shown;
- `fmt(loss)`: a loss as text;
- `show_summary(exp)`: the finished run in words and numbers.
"""

import math

import pandas as pd
import streamlit as st

from minillm.charts.training import loss_chart, runs_frame
from minillm.bpe import fingerprint
from minillm.corpus import CATS_AND_DOGS, PRESETS, CorpusError, load_corpus, load_upload
from minillm.data import ambiguous_contexts, build_dataset, loss_floor
from minillm.experiment import TrainSettings, make_tokenizer
from ui import class_mode, model_state
from ui.bounded_cache import BoundedCache
from ui.links import check_link

PASTE, UPLOAD = "Paste your own sentences", "Upload a text file (.txt)"
KEEP = {"persist_state": "session"}  # settings survive a visit to Generate or Attention
# ... and live in the URL (ui.links): a teacher shares the address bar. The binding takes
# precedence over persist_state; a visit to another page still keeps them (tested).
LINKED = {**KEEP, "bind": "query-params"}
LINK_KEYS = ("train_corpus", "train_tokenizer", "train_block", "train_d_model", "train_heads",
             "train_lr", "train_epochs", "train_seed", "train_eos", "train_loss_on",
             "train_causal")


def fmt(loss: float) -> str:
    """A loss as the page shows it: 4 decimals, or 3 significant digits once it blew up."""
    return f"{loss:.4f}" if abs(loss) < 1e4 else f"{loss:.3g}"


PREVIEW_ENTRIES, PREVIEW_MB = 16, 200  # the shared previews: few, and small together
WINDOWS_SHOWN = 1_000  # rows of the windows table (the count above it says how many in all)


@st.cache_resource(show_spinner=False)
def _previews() -> BoundedCache:
    return BoundedCache(PREVIEW_ENTRIES, PREVIEW_MB * 1e6)


def preview(lines, tokenizer, block_size, eos, loss_on, bpe=None):
    """The dataset the next run will learn from, its floor and tables (read-only, shared).

    Shared by the whole server and keyed by what decides the data: the text itself and, for
    a BPE, its fingerprint (two students' BPEs can have the same name and merge count).
    """
    key = (lines, tokenizer, block_size, eos, loss_on, fingerprint(bpe) if bpe else None)

    def make():
        data = build_dataset(lines, make_tokenizer(TrainSettings(lines, tokenizer=tokenizer), bpe),
                             block_size, eos)
        vocab = pd.DataFrame({"id": range(data.vocab_size),
                              "token": [data.label(i) for i in range(data.vocab_size)]})
        windows = pd.DataFrame(data.windows_table(limit=WINDOWS_SHOWN))
        return (data, loss_floor(data, loss_on), vocab, windows,
                pd.DataFrame(ambiguous_contexts(data, loss_on)))

    return _previews().get(key, make)


@st.cache_data(max_entries=256, show_spinner=False)
def _loss_chart_frame(floor: float, start_loss: float, epochs: int, names: tuple, right: int) -> dict:
    """The loss chart's spec for these runs, without their points (shared by every session)."""
    skeleton = pd.DataFrame({"run": list(names), "epoch": right, "loss": floor,
                             "current": [name.startswith("this run") for name in names]})
    return loss_chart(skeleton, floor=floor, start_loss=start_loss, epochs=epochs).to_dict()


def chart_spec(exp):
    """The loss chart as a Vega-Lite spec. Altair's validation costs 0.1-0.3 s, so the chart's
    frame is built once per distinct (floor, runs shown, length) for the whole server: thirty
    students training the notebook's run share one. Each rerun swaps in the curves' rows."""
    runs = runs_frame(exp.trainer.history, exp.settings.label(), model_state.past_runs())
    names = tuple(dict.fromkeys(runs["run"]))
    right = max(exp.trainer.epochs, int(runs["epoch"].max()) if len(runs) else 1)
    spec = _loss_chart_frame(exp.floor, exp.start_loss, exp.trainer.epochs, names, right)
    return {**spec, "datasets": {**spec["datasets"], spec["data"]["name"]: runs}}


def choose_corpus():
    """(name, lines) for the next run; raises CorpusError with a message for the student."""
    check_link("train_corpus", "corpus", options=[*PRESETS, PASTE, UPLOAD],
               default=next(iter(PRESETS)))
    choice = st.selectbox("Corpus", [*PRESETS, PASTE, UPLOAD], key="train_corpus", **LINKED)
    if choice in PRESETS:
        return choice, PRESETS[choice]
    if choice == PASTE:
        text = st.text_area("Your sentences, one per line", "\n".join(CATS_AND_DOGS),
                            height=150, key="train_text", **KEEP)
        corpus = load_corpus(text, "your sentences")
    else:
        upload = st.file_uploader("A plain-text file, one sentence per line", type=["txt"],
                                  key="train_file")
        if upload is None:
            raise CorpusError("Upload a .txt file (UTF-8), one sentence per line.")
        corpus = load_upload(upload.getvalue(), upload.name)
    for note in corpus.notes:
        st.caption(note)
    return corpus.name, corpus.lines


def show_summary(exp) -> None:
    """The finished run in words: done (or why it stopped), the numbers, what they mean."""
    result = exp.summary()
    if result["stopped_reason"]:
        st.warning(result["stopped_reason"], icon=":material/warning:")
    else:
        st.success(f"Training done: {result['epochs']} epochs in {result['seconds']:.1f} s.",
                   icon=":material/check_circle:")
    cols = st.columns(5 if "honest_loss" in result else 4)
    cols[0].metric("Final training loss", fmt(result["loss"]))
    cols[1].metric("Loss floor", f"{result['floor']:.4f}")
    cols[2].metric("Parameters", f"{result['parameters']:,}")
    cols[3].metric("Training time", f"{result['seconds']:.1f} s")
    if "honest_loss" in result:
        cols[4].metric("Honest loss", fmt(result["honest_loss"]),
                       help="The loss with later words hidden, as when the model writes")
    if "honest_loss" in result and result["loss"] < result["floor"] - 0.02:
        st.error(f"The training loss {result['loss']:.4f} is below the floor "
                 f"{result['floor']:.4f}, which no honest model can do: **the model was peeking "
                 f"at the answer.** Without the causal mask each position sees the next word. "
                 f"With the future hidden, as when it writes new text, its loss is "
                 f"{result['honest_loss']:.4f}.", icon=":material/visibility:")
    else:
        learned = math.floor(result["learned"] * 1000) / 10
        st.markdown(f"#### The model has learned {learned:.1f}% of what can be learned.")
    st.markdown(
        f"It started at ln|V| = {result['start_loss']:.3f} (a blind guess among "
        f"{result['vocab_size']} ids). **The floor, {result['floor']:.4f}, is the best any "
        "model can do on this data:** after some contexts several next words really occur "
        "(see *Ambiguous contexts* below), so no model can be sure.")
    if not result["stopped_reason"] and max(exp.trainer.history) > 2 * result["start_loss"]:
        st.warning(f"The learning rate {exp.settings.lr:g} is too high: on the way the loss shot "
                   f"up to {max(exp.trainer.history):.3g} (cut off at the top of the chart). "
                   "Try 1e-3.", icon=":material/trending_up:")
    class_mode.post_button(exp)  # in a class: post this run to the class board in one click
