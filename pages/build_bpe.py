"""Build a BPE: how does a tokenizer learn its pieces from text?

Layout and widgets only. Training and the tables come from `minillm.bpe`, the figure from
`minillm.charts.bpe`, the coloured chips from `ui.chips`. Training is cached per (text,
merges, pre-split), so coming back to the page or moving the step slider never retrains.
The result is left in ``st.session_state["trained_bpe"]`` for the Compare and Train pages.
"""

from functools import partial

import pandas as pd
import streamlit as st

from minillm import bpe, display, notebook
from minillm.charts.bpe import vocabulary_chart
from minillm.corpus import PRESETS, CorpusError, load_corpus, preset
from minillm.tokenizers import TiktokenTokenizer, token_pieces
from minillm.words import top_words
from ui.charts import show_chart
from ui.chips import legend_lines, pieces_table_html, render_legend, render_token_chips
from ui import linked
from ui.links import check_unknown_settings, left_out_note, reset_when_changed
from ui.links import share_caption, text_binding
from ui.notebook_button import notebook_button
from ui.plain_text import plain
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py

PASTE = "Paste your own text"
WORDFREQ = "Most common English words (wordfreq)"
MAX_MERGES = 2_000
DEFAULT_MERGES = 200
MAX_SENTENCE_CHARS = 300
METRIC_CHARS = 12  # a longer piece is cut in a metric's box: the three are shown as a table
EXAMPLE_SENTENCE = "the cat chased the bookkeepers' dog 🐕"
WORDFREQ_RANGE, DEFAULT_WORDFREQ = (1_000, 20_000), 5_000
# The settings a shared link carries, each declared once (ui.linked).
CORPUS = linked.Choice("bpe_corpus", "text to learn from", next(iter(PRESETS)),
                       [*PRESETS, PASTE, WORDFREQ])
TEXT = linked.Text("bpe_text", "text", "")
WORDS = linked.Number("bpe_words", "how many words", DEFAULT_WORDFREQ, *WORDFREQ_RANGE,
                      show="{:,}".format)
MERGES = linked.Number("bpe_merges", "merges", DEFAULT_MERGES, 1, MAX_MERGES)
SPLIT = linked.Flag("bpe_split", "split", True)
STEP = linked.Choice("bpe_step", "merges applied", 0)  # its range: the merges made
SENTENCE = linked.Text("bpe_sentence", "sentence", EXAMPLE_SENTENCE, max_chars=MAX_SENTENCE_CHARS)
LINK_KEYS = linked.keys("bpe_")


@st.cache_resource(max_entries=16, show_spinner=False)
def trained_bpe(text: str, num_merges: int, regex_split: bool) -> bpe.BPEResult:
    """Train once per (text, merges, pre-split), showing a progress bar while it runs.

    The bar is made and emptied inside this function, so a cache hit replays nothing visible.
    """
    bar = st.progress(0.0, text="Training…")
    every = max(1, num_merges // 50)  # about 50 updates, however many merges

    def progress(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            bar.progress(done / total, text=f"Merge {done:,} of {total:,}")

    result = bpe.train_bpe(text, num_merges, regex_split=regex_split, progress=progress)
    bar.empty()
    return result


st.title("Build a BPE")
st.subheader("How does a tokenizer learn its pieces from text?")
st.markdown(
    """
Start with the smallest pieces there are: single **bytes** (for English, single letters,
spaces and punctuation). Then repeat one simple step, again and again:

1. Find the two pieces that sit **side by side most often** in the text.
2. Glue them into **one new piece**, and give it the next free number.

Each glue step is a **merge**. After a few hundred merges, common words like *the* are one
piece, and rare words are built from a few pieces. This is **byte pair encoding** (BPE): the
way GPT models got their tokens.
"""
)
share_caption()
check_unknown_settings("bpe_", LINK_KEYS)

st.header("1. Pick a text to learn from")
choice_col, detail_col = st.columns([1, 2], gap="large")
corpus_choice = CORPUS.radio("Text", container=choice_col)
with detail_col:
    if corpus_choice == PASTE:
        pasted_bind = text_binding("bpe_text", "text")  # a long paste stays out of links
        pasted = TEXT.text_area("Your text", height=160, bind=pasted_bind,
                                placeholder="Paste a few sentences, a poem, a page of a book…")
        if pasted_bind is None:
            left_out_note("text", pasted)
        try:
            corpus = load_corpus(pasted or "")
        except CorpusError as error:
            st.info(str(error), icon=":material/edit_note:")
            st.stop()
        for note in corpus.notes:
            st.caption(note)
        text, corpus_name = corpus.text, "your text"
    elif corpus_choice == WORDFREQ:
        n_words = WORDS.slider("How many words", widget_step=1_000)
        text, corpus_name = " ".join(top_words(n_words)), f"top {n_words:,} English words"
        st.caption(f"The {n_words:,} most common English words, joined by spaces into one long "
                   "line (the notebook's experiment). Each word counts once, common or rare.")
    else:
        text, corpus_name = preset(corpus_choice).text, corpus_choice
        st.container(height=170, border=True).text(text)
    st.caption(f"{len(text):,} characters · {len(text.encode('utf-8')):,} bytes · "
               f"{len(text.split()):,} words")

st.header("2. Train")
merges_col, split_col = st.columns([3, 2], gap="large")
num_merges = MERGES.slider(
    "Number of merges", container=merges_col,
    help="Each merge adds one piece to the vocabulary: 256 bytes + the merges.")
regex_split = SPLIT.toggle(
    "Split into words first", container=split_col,
    help="As GPT-4 does: cut the text into words, numbers and punctuation before counting "
         "pairs, so a piece never glues the end of one word to the start of the next.")
result = trained_bpe(text, num_merges, regex_split)
if not result.merges:
    st.warning("There is nothing to merge in this text: every piece of it is a single byte.")
    st.stop()
if len(result.merges) < num_merges:
    st.info(f"Only {len(result.merges):,} merges were possible: after that every "
            f"{'word' if regex_split else 'part'} of the text is already one piece.",
            icon=":material/check_circle:")

st.header("3. Step through the merges")
n_done = len(result.merges)
# A select slider keeps one identity whatever its range; a new training starts at all merges.
reset_when_changed("bpe_step", n_done, because=(hash(text), num_merges, regex_split))
step = STEP.select_slider("Merges applied", options=range(n_done + 1), default=n_done,
                          expected=f"a whole number from 0 to {n_done:,}",
                          help="Slide to the left to undo merges, to the right to redo them.")
if step:
    latest = result.merges[step - 1]
    times = "once" if latest.count == 1 else f"{latest.count:,} times"
    st.markdown(f"**Merge {step:,}** glued these two pieces, found side by side "
                f"**{times}**, into piece number **{latest.rank:,}**:")
    shown = {name: bpe.readable_piece(piece) for name, piece in [("Left piece", latest.left_bytes),
             ("Right piece", latest.right_bytes), ("New piece", latest.new_bytes)]}
    if max(map(len, shown.values())) > METRIC_CHARS:  # whole and wrapped, never cut
        st.html(pieces_table_html(pd.DataFrame([shown]), list(shown)))
    else:  # a metric's value is Markdown: plain() shows pieces like ** or $ as they are
        for column, (name, piece) in zip(st.columns(3), shown.items()):
            column.metric(name, plain(piece), border=True)
else:
    st.markdown("**No merges yet:** every byte is its own token.")

sentence = SENTENCE.text_input("A sentence to cut into tokens")
tokenizer = TiktokenTokenizer(result.encoding(step), display_name=f"BPE after {step:,} merges")
ids = tokenizer.encode(sentence)
render_token_chips(tokenizer, ids, key="build_bpe_chips")
st.caption(f"{display.count(len(ids), 'token')} for {display.count(len(sentence.encode('utf-8')), 'byte')}, "
           f"with a vocabulary of {result.vocab_size(step):,} pieces. Words the text taught it "
           "become single pieces; other words fall back to smaller pieces.")
render_legend(legend_lines(token_pieces(tokenizer, ids)))

table_col, chart_col = st.columns([1, 1], gap="large")
with table_col:
    st.subheader("The merges so far")
    merges = bpe.merges_table(result, step).sort_values("merge", ascending=False)
    with st.container(height="content" if step <= 10 else 380, key="bpe_merges_table"):
        st.html(pieces_table_html(merges, ["left", "right", "new piece"]))
    render_legend([*display.legend_lines(merges["new piece"]),
                   "Newest first; every piece whole. count: how often the pair was found."])
with chart_col:
    st.subheader("Bigger vocabulary, fewer tokens")
    curve = bpe.vocabulary_curve(result, also=[step])
    show_chart(vocabulary_chart, curve, current_merges=step)
    st.caption(f"Tokens per word in the training text. It starts at "
               f"{result.tokens_per_word(0):.1f} (one token per byte) and falls fast: the "
               "first merges glue the most common pairs. Later merges glue rarer pairs and "
               "save less. The red dot is the step shown above.")

st.session_state["trained_bpe"] = {"result": result, "merges": step, "name": corpus_name}
st.success(f"This BPE, after {step:,} merges ({result.vocab_size(step):,} pieces), is now "
           "offered on the Compare tokenizers page.", icon=":material/share:")

notebook_button("build_bpe", partial(  # the same training, step and sentence
    notebook.build_bpe_notebook, text, corpus_name=corpus_name, num_merges=num_merges,
    regex_split=regex_split, step=step, sentence=sentence,
    figures={"merges": len(result.merges), "ids": ids, "vocab_size": result.vocab_size(step),
             "tokens_per_word": result.tokens_per_word(step),
             "latest_merge": [latest.left, latest.right, latest.rank, latest.count] if step else None}))
