"""Widgets of the Which tokens? page (layout glue: the numbers come from `minillm.tournament`,
the figure from `minillm.charts.tournament`, the shared jobs from `ui.tournament_jobs`).

- `choose_corpus()`: generated stories (new names, typos, seed), a preset, pasted or
  uploaded text, as a `TournamentCorpus` (raises `CorpusError` / `TournamentError`);
- `choose_settings()`: the budget and the model size;
- `show_progress(job)`: a progress bar per entrant while the experiment trains;
- `show_results(result)`: the verdict, the chart, the table, the rule for unknown words;
- `offer_training(result)` and `hand_to_train(corpus)`: train a model on Train with any
  entrant's tokenizer on this text (a BPE left as ``st.session_state["trained_bpe"]``, as
  Build a BPE leaves its own).

Every setting lives in the address bar (``tok_`` keys), each declared once (`ui.linked`).
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from minillm import notebook
from minillm import tournament as T
from minillm.charts.tournament import bits_chart, results_frame
from minillm.corpus import COUNTRY_STYLE, PRESETS
from minillm.stories import StorySettings
from ui import linked
from ui import tournament_jobs as jobs
from ui.charts import show_chart
from ui.corpus_input import PASTE, UPLOAD, own_text
from ui.notebook_button import notebook_button
from ui.plain_text import plain

STORIES = "Generated stories (their floor is known)"
CORPORA = [STORIES, *PRESETS, PASTE, UPLOAD]
NEW_NAMES_PERCENT = round(100 * T.DEFAULT_STORIES.new_name_rate)  # enough to matter
BUDGET_LABELS = {"quick": f"quick: {T.BUDGETS['quick']} steps (about 20 s)",
                 "full": f"full: {T.BUDGETS['full']} steps (about 60 s)"}
SIZE_LABELS = {"tiny": "tiny: 16 numbers per token", "small": "small: 32 numbers per token",
               "bigger": "bigger: 64 numbers per token, 4 heads"}

# The settings in the address bar, each declared once (`ui.linked`).
KEPT = {"persist": True}
CORPUS = linked.Choice("tok_corpus", "corpus", STORIES, CORPORA, **KEPT)
NEW_NAMES = linked.Number("tok_new_names", "new names", NEW_NAMES_PERCENT, 0, 50, step=5, **KEPT)
TYPOS = linked.Number("tok_typos", "typos", 0, 0, 20, **KEPT)
SEED = linked.Number("tok_seed", "seed", 0, 0, 1000, **KEPT)
BUDGET = linked.Choice("tok_budget", "budget", "quick", BUDGET_LABELS,
                       format_func=BUDGET_LABELS.get, **KEPT)
SIZE = linked.Choice("tok_size", "model size", "small", SIZE_LABELS,
                     format_func=SIZE_LABELS.get, **KEPT)
LINK_KEYS = linked.keys("tok_")


def choose_corpus() -> T.TournamentCorpus:
    """The text the experiment learns from and is scored on (shared: one per setting)."""
    choice = CORPUS.selectbox("Corpus")
    if choice == STORIES:
        left, middle, right = st.columns(3)
        names = NEW_NAMES.slider("New names (%)", container=left,
                                 help="The share of names that are brand new, made of three "
                                      "random syllables: words the training text never had.")
        typos = TYPOS.slider("Typos (%)", container=middle,
                             help="The share of longer words with a letter swapped, dropped "
                                  "or doubled.")
        seed = SEED.number_input("Seed (which stories)", container=right)
        st.caption(f"{T.STORY_SENTENCES:,} sentences from the story grammar, one story a line; "
                   f"{T.VALID_SHARE:.0%} of the stories are held out.")
        return jobs.stories(StorySettings(seed=int(seed), new_name_rate=names / 100,
                                          typo_rate=typos / 100))
    if choice in PRESETS:
        return jobs.text(PRESETS[choice], choice)
    corpus = own_text(choice, "tok", COUNTRY_STYLE)
    return jobs.text(corpus.lines, corpus.name)


def choose_settings() -> T.TournamentSettings:
    """The training budget and model size, the same for every entrant."""
    budget = BUDGET.radio("Training budget (optimizer steps, the same for every model)")
    size = SIZE.select_slider("Model size (the same for every model)")
    settings = T.with_budget(T.TournamentSettings(), budget, size)
    st.caption(f"Every model: {settings.block_size} tokens of context, {settings.d_model} "
               f"numbers per token, {settings.n_heads} heads, {settings.steps} steps of "
               f"{settings.batch_size} windows, learning rate {settings.lr:g}, seed "
               f"{settings.seed}.")
    return settings


def show_progress(job: jobs.Job) -> None:
    """One bar per entrant: its steps so far, or its score once it is done."""
    if job.waiting_for_slot:
        st.caption(":material/hourglass_top: Waiting for a free training slot: other students "
                   "are training right now. This goes on by itself in a moment.")
    lines = job.lines()
    if not lines:
        st.progress(0.0, text="Preparing the tokenizers (training the BPEs on the training "
                              "text)…")
    for line in lines:
        name = plain(line.name)
        if line.result is not None:
            st.progress(1.0, text=f"**{name}**: done, {line.result.heldout_bits:.3f} bits per "
                                  "character on the held-out text")
        else:
            st.progress(line.steps_done / line.steps,
                        text=f"**{name}**: step {line.steps_done} of {line.steps}")


def show_results(result: T.TournamentResult, corpus: T.TournamentCorpus) -> None:
    """The finished experiment: done marker, verdict, chart, table, the fair score's rule."""
    seconds = sum(e.seconds for e in result.entrants)
    st.success(f"Experiment done: {len(result.entrants)} models trained "
               f"({seconds:.0f} s of training) and scored on {result.heldout_chars:,} held-out "
               "characters.", icon=":material/check_circle:")
    st.markdown(f"#### {plain(result.verdict())}")
    frame = results_frame(result)
    show_chart(bits_chart, frame, floor_bits=result.heldout_floor_bits,
               floor_label="held-out floor")
    floor = ""
    if result.heldout_floor_bits is not None:
        floor = (f" The dashed line is the floor, {result.heldout_floor_bits:.3f}: the "
                 "grammar's own uncertainty, which no model can beat on average.")
    elif corpus.floor_bits is not None:
        floor = (" With typos on, the floor is not known exactly (it is at most "
                 f"{corpus.floor_bits:.3f}), so it is not drawn.")
    st.caption("Each point is one model: further left, fewer ids in its vocabulary; lower, "
               "fewer bits per character on text it never saw (better). Hover a point for "
               f"its parameters.{floor}")
    st.markdown(f"**The fair score.** {plain(result.unknown_rule())}")
    shown = frame.drop(columns=["family"])
    for column in ("unknown words", "paid for unknown words"):
        shown[column] = shown[column].map(lambda v: None if v is None or v != v else v)
    shown["unknown words"] = shown["unknown words"] * 100
    number = st.column_config.NumberColumn
    st.dataframe(shown, hide_index=True, width="stretch", placeholder="—", column_config={
        "vocabulary": number("vocabulary (ids)", format="localized"),
        "embedding parameters": number(format="localized"),
        "parameters": number(format="localized"),
        "tokens per character": number(format="%.3f"),
        "context (characters)": number(format="%.0f",
                                       help="Characters of text the context window holds"),
        "training seconds": number(format="%.1f"),
        "held-out bits per character": number(format="%.3f"),
        "unknown words": number("unknown (%)", format="%.1f",
                                help="Held-out words (or characters) the vocabulary lacked"),
        "paid for unknown words": number("paid for unknown (bits per character)",
                                         format="%.3f"),
    })
    for e in result.entrants:
        if e.note:
            st.caption(f"**{plain(e.name)}**: {plain(e.note)}.")


def _ask_train(kind: str, merges: int | None) -> None:  # a button's callback: `hand_to_train`
    st.session_state.tok_train_with = (kind, merges)


def offer_training(result: T.TournamentResult) -> None:
    """A button per entrant: Train opens with its tokenizer and this experiment's text."""
    st.subheader("Train a model with one of these tokenizers")
    st.markdown("**Train** opens with that tokenizer, this text (the same held-out stories "
                "or lines) and this experiment's model and steps, so you can watch it learn "
                "and then generate with it. "
                "A BPE from here goes there as *your BPE*, in place of one from Build a BPE.")
    entrants = [e for e in result.entrants if e.kind in T.TRAIN_TOKENIZERS]
    for start in range(0, len(entrants), 4):  # four to a row: the labels stay whole
        row = entrants[start:start + 4]
        for column, e in zip(st.columns(4), row):
            key = f"tok_train_{e.merges}" if e.kind == "bpe" else f"tok_train_{e.kind}"
            column.button(f"Train with {e.name}", key=key, icon=":material/model_training:",
                          on_click=_ask_train, args=(e.kind, e.merges))


def _story_knobs() -> tuple[int, int, int]:
    """The stories' seed, new names (%) and typos (%), as this page's widgets hold them."""
    state = st.session_state
    return (int(state.get("tok_seed", 0)), int(state.get("tok_new_names", NEW_NAMES_PERCENT)),
            int(state.get("tok_typos", 0)))


def _train_corpus(corpus: T.TournamentCorpus) -> dict:
    """The Train page's corpus widgets set to this experiment's text: the same stories, the
    same preset, or the same lines in the same order (so the same ones are held out), pasted:
    an upload widget cannot be filled in for the student."""
    from ui import train_settings as train

    valid = {"train_valid": round(100 * T.VALID_SHARE)}
    if st.session_state.get("tok_corpus", STORIES) == STORIES:
        seed, names, typos = _story_knobs()
        return {"train_corpus": train.STORIES, "train_story_sentences": T.STORY_SENTENCES,
                "train_story_seed": seed, "train_story_new_names": names,
                "train_story_typos": typos, "train_story_nouns": train.STORY.n_nouns,
                "train_story_verbs": train.STORY.n_verbs, **valid}
    if corpus.name in train.PRESETS and tuple(train.PRESETS[corpus.name]) == corpus.lines:
        return {"train_corpus": corpus.name, **valid}
    return {"train_corpus": train.PASTE, "train_text": "\n".join(corpus.lines), **valid}


def _train_model(kind: str, corpus: T.TournamentCorpus, settings: T.TournamentSettings,
                 bpe=None) -> dict:
    """The Train page's model and run widgets set to this experiment's run for `kind`, its
    context as long as this server's budgets allow (`minillm.tournament.train_run`)."""
    from minillm.budget import BudgetError
    from ui.model_state import budgets

    try:
        run = T.train_run(kind, corpus, settings, budgets(), bpe)
    except BudgetError:
        return {}  # Train says what to lower, with its own settings
    return {"train_block": run.block_size, "train_d_model": run.d_model,
            "train_heads": run.n_heads, "train_layers": run.n_layers, "train_lr": run.lr,
            "train_epochs": run.epochs, "train_batch": run.batch_size, "train_seed": run.seed,
            "train_eos": run.eos, "train_loss_on": run.loss_on, "train_causal": run.causal,
            "train_valid": round(100 * run.valid_share)}


def hand_to_train(corpus: T.TournamentCorpus, settings: T.TournamentSettings) -> bool:
    """After a Train with button: Train's tokenizer, corpus and model set to that entrant's,
    this text and this experiment's (a BPE as ``trained_bpe``, the same merges on the same
    lines); True: go to Train."""
    asked = st.session_state.pop("tok_train_with", None)
    if asked is None:
        return False
    kind, merges = asked
    bpe = None
    if kind == "bpe":
        result = T.entrant_bpe(corpus.train, int(merges))
        st.session_state["trained_bpe"] = {"result": result, "merges": len(result.merges),
                                           "name": "BPE from Which tokens?"}
        bpe = result.encoding()
    st.session_state["train_tokenizer"] = T.TRAIN_TOKENIZERS[kind]
    handed = {**_train_corpus(corpus), **_train_model(kind, corpus, settings, bpe)}
    for key, value in handed.items():
        st.session_state[key] = value
    return True


def _corpus_spec(corpus: T.TournamentCorpus) -> dict:
    """This page's corpus as `minillm.notebook.which_tokens_notebook` takes it: the stories'
    knobs, or the lines the page read (a preset by its name)."""
    if st.session_state.get("tok_corpus", STORIES) == STORIES:
        seed, names, typos = _story_knobs()
        return {"story_seed": seed, "new_names": names / 100, "typos": typos / 100}
    return {"text": "\n".join(corpus.lines), "corpus_name": corpus.name}


def take_home(result: T.TournamentResult | None, corpus: T.TournamentCorpus) -> None:
    """The "Open as a notebook" button: this experiment, and its figures once it has run."""
    figures = None
    if result is not None:
        words = result.entrant("words")
        figures = {"heldout_bits": {e.name: e.heldout_bits for e in result.entrants},
                   "vocab_size": {e.name: e.vocab_size for e in result.entrants},
                   "unknown_share": words.unknown_share if words else None,
                   "heldout_floor_bits": result.heldout_floor_bits,
                   "verdict": result.verdict()}
    state = st.session_state
    notebook_button("which_tokens", partial(
        notebook.which_tokens_notebook, **_corpus_spec(corpus),
        budget=state.get("tok_budget", "quick"), size=state.get("tok_size", "small"),
        figures=figures))
