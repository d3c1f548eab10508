"""The Train page's settings for the next run: the widgets of its folded settings expander.

`next_run()` draws the expander (corpus, tokenizer, held-out share; model size and depth;
epochs, batch, seed and the objective) and returns a `NextRun`: what the next Train builds.
Every widget lives in the address bar (`LINKED`), each read by `ui.links.check_link` first,
so a bad link value gets a notice above the folded expander (`link_notices`).

The "Stories (generated)" preset is text from the story grammar (`minillm.stories`): as many
sentences as the slider asks, one line per story (so a window can reach back to the name a
pronoun stands for), generated once per server for each setting (`story_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from minillm.budget import BATCH_SIZES, D_MODELS, LAYERS, LEARNING_RATES, MAX_VALID_SHARE
from minillm.corpus import CATS_AND_DOGS, PRESETS, CorpusError, load_corpus, load_upload
from minillm.experiment import TrainSettings
from minillm.model import head_choices
from minillm.stories import NOUNS, VERBS, StorySettings, generate_stories
from ui.links import check_link, link_notices

PASTE, UPLOAD = "Paste your own sentences", "Upload a text file (.txt)"
STORIES = "Stories (generated)"
CORPORA = [*PRESETS, STORIES, PASTE, UPLOAD]
KEEP = {"persist_state": "session"}  # settings survive a visit to Generate or Attention
# ... and live in the URL (ui.links): a teacher shares the address bar. The binding takes
# precedence over persist_state; a visit to another page still keeps them (tested).
LINKED = {**KEEP, "bind": "query-params"}
STORY_KEYS = ("train_story_sentences", "train_story_seed", "train_story_new_names",
              "train_story_typos", "train_story_nouns", "train_story_verbs")
LINK_KEYS = ("train_corpus", "train_tokenizer", "train_block", "train_d_model", "train_heads",
             "train_lr", "train_epochs", "train_seed", "train_eos", "train_loss_on",
             "train_causal", "train_valid", "train_layers", "train_batch", *STORY_KEYS)

NOTEBOOK = TrainSettings()
STORY = StorySettings()  # the grammar's own defaults
SENTENCES = {"min_value": 100, "max_value": 20_000, "step": 100}
DEFAULT_SENTENCES = 2_000
STORY_CACHE_ENTRIES = 8  # a 20,000-sentence text is about 0.7 MB: a few MB in all
LOSS_ON = {"last": "the last position (the notebook)", "every": "every position (GPT style)"}
ON_OFF = {True: "on", False: "off"}
BATCHES = [0, *BATCH_SIZES]
ALL_WINDOWS = "all windows (the notebook)"
UNITS = {"word": "words", "character": "characters", "bytes": "bytes", "cl100k_base": "pieces",
         "bpe": "BPE pieces"}
#: Every tokenizer the Which tokens? experiment enters, so a student can train with any of them.
TOKENIZERS = {"word": "words (the notebook)", "character": "characters",
              "bytes": "bytes (UTF-8: 256 possible tokens)",
              "cl100k_base": "cl100k_base (GPT-4's pieces, renumbered to the ones used)"}


def batch_label(size: int) -> str:
    return ALL_WINDOWS if size == 0 else str(size)


@dataclass(frozen=True)
class NextRun:
    """What the settings say the next run is. `problem`: why the corpus cannot be used."""

    corpus_name: str | None
    lines: tuple[str, ...] | None
    problem: str | None
    tokenizer: str
    options: dict = field(default_factory=dict)  # the other TrainSettings fields
    line_nats: tuple[float, ...] | None = None  # generated stories: each line's nats
    story: StorySettings | None = None  # generated stories: the grammar's knobs

    def settings(self) -> TrainSettings:
        return TrainSettings(self.lines, self.corpus_name, self.tokenizer, **self.options)


@st.cache_data(max_entries=STORY_CACHE_ENTRIES, show_spinner="Writing the stories…")
def story_lines(n_sentences: int, seed: int, new_name_rate: float, typo_rate: float,
                n_nouns: int, n_verbs: int) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """One line per story and its nats (`Stories.by_story`), shared by the whole server."""
    story = StorySettings(n_nouns=n_nouns, n_verbs=n_verbs, new_name_rate=new_name_rate,
                          typo_rate=typo_rate, seed=seed)
    return generate_stories(story, n_sentences).by_story()


def story_corpus_name(story: StorySettings, n_sentences: int) -> str:
    """The run's corpus name: the preset, its size and seed, and the knobs moved from default."""
    knobs = [f"{n_sentences:,} sentences", f"seed {story.seed}"]
    if story.new_name_rate != STORY.new_name_rate:
        knobs.append(f"new names {story.new_name_rate:.0%}")
    if story.typo_rate != STORY.typo_rate:
        knobs.append(f"typos {story.typo_rate:.0%}")
    if story.n_nouns != STORY.n_nouns:
        knobs.append(f"{story.n_nouns} nouns")
    if story.n_verbs != STORY.n_verbs:
        knobs.append(f"{story.n_verbs} verbs")
    return f"{STORIES}: {', '.join(knobs)}"


def _story_knobs() -> tuple[StorySettings, int]:
    """The stories' size and seed, and the grammar's knobs (folded)."""
    check_link("train_story_sentences", "sentences", default=DEFAULT_SENTENCES,
               min_value=SENTENCES["min_value"], max_value=SENTENCES["max_value"])
    n = st.slider("Sentences to generate", value=DEFAULT_SENTENCES, key="train_story_sentences",
                  **SENTENCES, **LINKED,
                  help="About 5 sentences make a story; each story is one line of the corpus.")
    check_link("train_story_seed", "story seed", default=STORY.seed, min_value=0,
               max_value=1_000_000)
    seed = st.number_input("Story seed (which stories)", 0, 1_000_000, STORY.seed,
                           key="train_story_seed", **LINKED)
    with st.expander("The grammar's knobs: new names, typos, nouns, verbs"):
        default_names = round(STORY.new_name_rate * 100)
        check_link("train_story_new_names", "new names", default=default_names, min_value=0,
                   max_value=100)
        names = st.slider("New names (% of names made up on the spot)", 0, 100, default_names,
                          format="%d%%", key="train_story_new_names", **LINKED,
                          help="Brand-new names are built from syllables: held-out stories "
                               "then have names the training text never had.")
        check_link("train_story_typos", "typos", default=0, min_value=0, max_value=20)
        typos = st.slider("Typos (% of words of 3+ letters)", 0, 20, 0, format="%d%%",
                          key="train_story_typos", **LINKED)
        check_link("train_story_nouns", "nouns", default=STORY.n_nouns, min_value=1,
                   max_value=len(NOUNS))
        nouns = st.slider("Nouns (things the characters handle)", 1, len(NOUNS), STORY.n_nouns,
                          key="train_story_nouns", **LINKED)
        check_link("train_story_verbs", "verbs", default=STORY.n_verbs, min_value=1,
                   max_value=len(VERBS))
        verbs = st.slider("Verbs (what they do)", 1, len(VERBS), STORY.n_verbs,
                          key="train_story_verbs", **LINKED)
    story = StorySettings(n_nouns=int(nouns), n_verbs=int(verbs), new_name_rate=names / 100,
                          typo_rate=typos / 100, seed=int(seed))
    return story, int(n)


def choose_corpus():
    """(name, lines, line_nats, story settings) for the next run; the last two only for
    generated stories. Raises CorpusError with a message for the student."""
    check_link("train_corpus", "corpus", options=CORPORA, default=next(iter(PRESETS)))
    choice = st.selectbox("Corpus", CORPORA, key="train_corpus", **LINKED)
    if choice in PRESETS:
        return choice, PRESETS[choice], None, None
    if choice == STORIES:
        story, n = _story_knobs()
        lines, nats = story_lines(n, story.seed, story.new_name_rate, story.typo_rate,
                                  story.n_nouns, story.n_verbs)
        st.caption(f"{n:,} sentences in {len(lines):,} stories, one line each.")
        return story_corpus_name(story, n), lines, nats, story
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
    return corpus.name, corpus.lines, None, None


def next_run(trained_bpe: dict | None) -> NextRun:
    """The settings expander; returns what the next run will be."""
    with link_notices(), st.expander(  # a bad link's notices show above, not folded away inside
            "Settings for the next run: corpus, tokenizer, model size, learning rate, "
            "epochs… (the notebook's values to start with)", icon=":material/tune:",
            key="train_settings_open"):  # keyed: a notice above it must not fold it shut
        left, middle, right = st.columns(3)
        with left:
            try:
                corpus_name, lines, line_nats, story = choose_corpus()
                problem = None
            except CorpusError as error:
                corpus_name = lines = line_nats = story = None
                problem = str(error)
                st.error(problem, icon=":material/error:")
            tokenizer = _tokenizer(trained_bpe)
            check_link("train_valid", "held-out share", default=round(NOTEBOOK.valid_share * 100),
                       min_value=0, max_value=round(MAX_VALID_SHARE * 100))
            valid = st.slider("Held out (% of the lines, never trained on)", 0,
                              round(MAX_VALID_SHARE * 100), round(NOTEBOOK.valid_share * 100),
                              format="%d%%", key="train_valid", **LINKED,
                              help="The model is also scored on lines it never saw: that tells "
                                   "learning the language from memorising the lines. Always "
                                   "the same lines, whatever the seed.")
        with middle:
            model = _model_size(tokenizer)
        with right:
            run = _run_length()
    options = {**model, **run, "valid_share": valid / 100}
    return NextRun(corpus_name, lines, problem, tokenizer, options, line_nats, story)


def _tokenizer(trained_bpe: dict | None) -> str:
    kinds = dict(TOKENIZERS)
    if trained_bpe:
        kinds["bpe"] = f"your BPE: {trained_bpe['name']} ({trained_bpe['merges']:,} merges)"
    check_link("train_tokenizer", "tokenizer", options=[kinds[k] for k in kinds],
               default=kinds["word"])
    tokenizer = st.radio("Tokenizer for the model", list(kinds), format_func=kinds.get,
                         key="train_tokenizer", **LINKED)
    if tokenizer == "cl100k_base":
        st.caption("cl100k_base knows 100,256 pieces; the model gets a row only for the pieces "
                   "these lines use, so its embedding table stays small.")
    if not trained_bpe:
        st.caption("Want BPE pieces of your own? Train one on the **Build a BPE** page; "
                   "it then shows up here.")
    return tokenizer


def _model_size(tokenizer: str) -> dict:
    check_link("train_block", "block size", default=NOTEBOOK.block_size, min_value=1,
               max_value=16)
    block_size = st.slider(f"Block size (tokens of context: {UNITS[tokenizer]})", 1, 16,
                           NOTEBOOK.block_size, key="train_block", **LINKED)
    check_link("train_d_model", "d_model", options=[str(d) for d in D_MODELS],
               default=NOTEBOOK.d_model)
    d_model = st.select_slider("d_model (numbers per token)", D_MODELS, NOTEBOOK.d_model,
                               key="train_d_model", **LINKED)
    heads = head_choices(d_model)
    check_link("train_heads", "heads", options=[str(h) for h in heads], default=NOTEBOOK.n_heads)
    n_heads = st.selectbox("Attention heads (each gets d_model / heads numbers)", heads,
                           heads.index(NOTEBOOK.n_heads), key="train_heads", **LINKED)
    check_link("train_layers", "layers", default=NOTEBOOK.n_layers, min_value=LAYERS[0],
               max_value=LAYERS[-1])
    n_layers = st.slider("Layers (attention + feed-forward, stacked)", LAYERS[0], LAYERS[-1],
                         NOTEBOOK.n_layers, key="train_layers", **LINKED,
                         help="The notebook has one. A second layer can combine what the "
                              "first one gathered.")
    check_link("train_lr", "learning rate", options=[f"{v:g}" for v in LEARNING_RATES],
               default=f"{NOTEBOOK.lr:g}")
    lr = st.select_slider("Learning rate (step size)", LEARNING_RATES, NOTEBOOK.lr,
                          format_func=lambda v: f"{v:g}", key="train_lr", **LINKED,
                          help="1e-3 is the notebook's. Try 1 or 10: too big a step "
                               "overshoots; 1000 blows up.")
    return {"block_size": block_size, "d_model": d_model, "n_heads": n_heads,
            "n_layers": int(n_layers), "lr": lr}


def _run_length() -> dict:
    check_link("train_epochs", "epochs", default=NOTEBOOK.epochs, min_value=10, max_value=2000)
    epochs = st.number_input("Epochs (passes over the data)", 10, 2000, NOTEBOOK.epochs,
                             step=50, key="train_epochs", **LINKED)
    check_link("train_batch", "batch size", options=[batch_label(b) for b in BATCHES],
               default=ALL_WINDOWS)
    batch_size = st.selectbox("Batch size (windows per step)", BATCHES, format_func=batch_label,
                              key="train_batch", **LINKED,
                              help="All windows: one step per pass over the data, as the "
                                   "notebook. A batch: each epoch is one step on that many "
                                   "windows drawn at random; far cheaper on a big corpus.")
    check_link("train_seed", "seed", default=NOTEBOOK.seed, min_value=0, max_value=1_000_000)
    seed = st.number_input("Seed (the random start)", 0, 1_000_000, NOTEBOOK.seed,
                           key="train_seed", **LINKED)
    check_link("train_eos", "EOS token", default=NOTEBOOK.eos, show=ON_OFF.get)
    eos = st.toggle("EOS token", NOTEBOOK.eos, key="train_eos", **LINKED,
                    help="An end-of-sentence token after every sentence: the model "
                         "learns where a sentence ends.")
    check_link("train_loss_on", "loss on", options=list(LOSS_ON.values()), default=LOSS_ON["last"])
    loss_on = st.radio("Loss on", ["last", "every"], key="train_loss_on", **LINKED,
                       format_func=LOSS_ON.get)
    check_link("train_causal", "causal mask", default=NOTEBOOK.causal, show=ON_OFF.get)
    causal = st.toggle("Causal mask", NOTEBOOK.causal, key="train_causal", **LINKED,
                       help="Hide later words: each position may only look at itself and "
                            "earlier ones.")
    return {"epochs": int(epochs), "batch_size": int(batch_size), "seed": int(seed), "eos": eos,
            "loss_on": loss_on, "causal": causal}
