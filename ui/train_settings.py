"""The Train page's settings for the next run: the widgets of its folded settings expander.

`next_run()` draws the expander (corpus, tokenizer, held-out share; model size and depth;
epochs, batch, seed and the objective) and returns a `NextRun`: what the next Train builds.
Every setting lives in the address bar, declared once below (`ui.linked`: key, name, default
and range; the link is read first, so a bad link value gets a notice above the folded
expander, `link_notices`).

The "Stories (generated)" preset is text from the story grammar (`minillm.stories`): as many
sentences as the slider asks, one line per story (so a window can reach back to the name a
pronoun stands for), generated once per server for each setting (`story_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from minillm.budget import BATCH_SIZES, D_MODELS, LAYERS, LEARNING_RATES, MAX_VALID_SHARE
from minillm.corpus import CATS_AND_DOGS, PRESETS, CorpusError
from minillm.experiment import TrainSettings
from minillm.model import head_choices
from minillm.stories import NOUNS, VERBS, StorySettings, generate_stories
from ui import linked
from ui.corpus_input import PASTE, UPLOAD, own_text
from ui.links import link_notices

STORIES = "Stories (generated)"
CORPORA = [*PRESETS, STORIES, PASTE, UPLOAD]
KEEP = {"persist_state": "session"}  # settings survive a visit to Generate or Attention
# ... and live in the URL (ui.linked): a teacher shares the address bar. The binding takes
# precedence over persist_state; a visit to another page still keeps them (tested).

NOTEBOOK = TrainSettings()
STORY = StorySettings()  # the grammar's own defaults
SENTENCES = {"min_value": 100, "max_value": 20_000, "step": 100}
DEFAULT_SENTENCES = 2_000
STORY_CACHE_ENTRIES = 8  # a 20,000-sentence text is about 0.7 MB: a few MB in all
LOSS_ON = {"last": "the last position (the notebook)", "every": "every position (GPT style)"}
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


# The settings in the address bar, each declared once (key, name in a link, default, range).
KEPT = {"persist": True}
CORPUS = linked.Choice("train_corpus", "corpus", next(iter(PRESETS)), CORPORA, **KEPT)
STORY_SENTENCES = linked.Number("train_story_sentences", "sentences", DEFAULT_SENTENCES,
                                SENTENCES["min_value"], SENTENCES["max_value"], **KEPT)
STORY_SEED = linked.Number("train_story_seed", "story seed", STORY.seed, 0, 1_000_000, **KEPT)
NEW_NAMES = linked.Number("train_story_new_names", "new names",
                          round(STORY.new_name_rate * 100), 0, 100, **KEPT)
TYPOS = linked.Number("train_story_typos", "typos", 0, 0, 20, **KEPT)
NOUN_COUNT = linked.Number("train_story_nouns", "nouns", STORY.n_nouns, 1, len(NOUNS), **KEPT)
VERB_COUNT = linked.Number("train_story_verbs", "verbs", STORY.n_verbs, 1, len(VERBS), **KEPT)
TOKENIZER = linked.Choice("train_tokenizer", "tokenizer", "word", list(TOKENIZERS), **KEPT)
VALID = linked.Number("train_valid", "held-out share", round(NOTEBOOK.valid_share * 100), 0,
                      round(MAX_VALID_SHARE * 100), **KEPT)
BLOCK = linked.Number("train_block", "block size", NOTEBOOK.block_size, 1, 16, **KEPT)
D_MODEL = linked.Choice("train_d_model", "d_model", NOTEBOOK.d_model, D_MODELS, **KEPT)
HEADS = linked.Choice("train_heads", "heads", NOTEBOOK.n_heads, **KEPT)  # they divide d_model
LAYERS_SETTING = linked.Number("train_layers", "layers", NOTEBOOK.n_layers, LAYERS[0],
                               LAYERS[-1], **KEPT)
LR = linked.Choice("train_lr", "learning rate", NOTEBOOK.lr, LEARNING_RATES,
                   format_func=lambda v: f"{v:g}", **KEPT)
EPOCHS = linked.Number("train_epochs", "epochs", NOTEBOOK.epochs, 10, 2000, **KEPT)
BATCH = linked.Choice("train_batch", "batch size", 0, BATCHES, format_func=batch_label, **KEPT)
SEED = linked.Number("train_seed", "seed", NOTEBOOK.seed, 0, 1_000_000, **KEPT)
EOS = linked.Flag("train_eos", "EOS token", NOTEBOOK.eos, **KEPT)
LOSS = linked.Choice("train_loss_on", "loss on", "last", list(LOSS_ON), format_func=LOSS_ON.get,
                     **KEPT)
CAUSAL = linked.Flag("train_causal", "causal mask", NOTEBOOK.causal, **KEPT)
STORY_KEYS = (STORY_SENTENCES.key, STORY_SEED.key, NEW_NAMES.key, TYPOS.key, NOUN_COUNT.key,
              VERB_COUNT.key)
LINK_KEYS = linked.keys("train_")


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
    n = STORY_SENTENCES.slider("Sentences to generate", widget_step=SENTENCES["step"],
                               help="About 5 sentences make a story; each story is one line "
                                    "of the corpus.")
    seed = STORY_SEED.number_input("Story seed (which stories)")
    with st.expander("The grammar's knobs: new names, typos, nouns, verbs"):
        names = NEW_NAMES.slider("New names (% of names made up on the spot)", format="%d%%",
                                 help="Brand-new names are built from syllables: held-out "
                                      "stories then have names the training text never had.")
        typos = TYPOS.slider("Typos (% of words of 3+ letters)", format="%d%%")
        nouns = NOUN_COUNT.slider("Nouns (things the characters handle)")
        verbs = VERB_COUNT.slider("Verbs (what they do)")
    story = StorySettings(n_nouns=int(nouns), n_verbs=int(verbs), new_name_rate=names / 100,
                          typo_rate=typos / 100, seed=int(seed))
    return story, int(n)


def choose_corpus():
    """(name, lines, line_nats, story settings) for the next run; the last two only for
    generated stories. Raises CorpusError with a message for the student."""
    choice = CORPUS.selectbox("Corpus")
    if choice in PRESETS:
        return choice, PRESETS[choice], None, None
    if choice == STORIES:
        story, n = _story_knobs()
        lines, nats = story_lines(n, story.seed, story.new_name_rate, story.typo_rate,
                                  story.n_nouns, story.n_verbs)
        st.caption(f"{n:,} sentences in {len(lines):,} stories, one line each.")
        return story_corpus_name(story, n), lines, nats, story
    corpus = own_text(choice, "train", CATS_AND_DOGS)
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
            valid = VALID.slider("Held out (% of the lines, never trained on)", format="%d%%",
                                 help="The model is also scored on lines it never saw: that "
                                      "tells learning the language from memorising the lines. "
                                      "Always the same lines, whatever the seed.")
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
    tokenizer = TOKENIZER.radio("Tokenizer for the model", options=list(kinds),
                                format_func=kinds.get)
    if tokenizer == "cl100k_base":
        st.caption("cl100k_base knows 100,256 pieces; the model gets a row only for the pieces "
                   "these lines use, so its embedding table stays small.")
    if not trained_bpe:
        st.caption("Want BPE pieces of your own? Train one on the **Build a BPE** page; "
                   "it then shows up here.")
    return tokenizer


def _model_size(tokenizer: str) -> dict:
    block_size = BLOCK.slider(f"Block size (tokens of context: {UNITS[tokenizer]})")
    d_model = D_MODEL.select_slider("d_model (numbers per token)")
    n_heads = HEADS.selectbox("Attention heads (each gets d_model / heads numbers)",
                              options=head_choices(d_model))
    n_layers = LAYERS_SETTING.slider("Layers (attention + feed-forward, stacked)",
                                     help="The notebook has one. A second layer can combine "
                                          "what the first one gathered.")
    lr = LR.select_slider("Learning rate (step size)",
                          help="1e-3 is the notebook's. Try 1 or 10: too big a step "
                               "overshoots; 1000 blows up.")
    return {"block_size": block_size, "d_model": d_model, "n_heads": n_heads,
            "n_layers": int(n_layers), "lr": lr}


def _run_length() -> dict:
    epochs = EPOCHS.number_input("Epochs (passes over the data)", step=50)
    batch_size = BATCH.selectbox("Batch size (windows per step)",
                                 help="All windows: one step per pass over the data, as the "
                                      "notebook. A batch: each epoch is one step on that many "
                                      "windows drawn at random; far cheaper on a big corpus.")
    seed = SEED.number_input("Seed (the random start)")
    eos = EOS.toggle("EOS token", help="An end-of-sentence token after every sentence: the "
                                       "model learns where a sentence ends.")
    loss_on = LOSS.radio("Loss on")
    causal = CAUSAL.toggle("Causal mask", help="Hide later words: each position may only look "
                                               "at itself and earlier ones.")
    return {"epochs": int(epochs), "batch_size": int(batch_size), "seed": int(seed), "eos": eos,
            "loss_on": loss_on, "causal": causal}
