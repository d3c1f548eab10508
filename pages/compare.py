"""Compare tokenizers: one text, several tokenizers side by side, and the pieces words share.

Layout and widgets only. The numbers come from `minillm.compare`, the figure from
`minillm.charts.compare`, the coloured chips from `ui.chips`, the shared tokenizers and caches
from `ui.compare_resources`. Every setting is in the URL (`ui.links`).
"""

from functools import partial

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from minillm import compare, display, notebook
from minillm.charts.compare import sharing_chart
from minillm.corpus import PRESETS
from minillm.tokenizers import FETCH_COMMAND, ByteTokenizer, TiktokenTokenizer, is_available
from minillm.words import NUMBERS_NOTE, is_number
from ui.charts import show_chart
from ui.chips import hex_legend_lines, legend_lines, render_chips_html, render_legend
from ui.chips import word_splits_html
from ui.compare_resources import WORDFREQ_CORPUS, default_bpe, encoding, piece_index, sharing
from ui.compare_resources import tokenized, word_tokenizer
from ui.compare_resources import BPE_MERGES
from ui import linked
from ui.links import check_unknown_settings, left_out_note, share_caption, text_binding
from ui.notebook_button import notebook_button
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py

OPTIONAL_ENCODINGS = {"gpt2": "GPT-2's byte-level BPE", "o200k_base": "GPT-4o's byte-level BPE"}
MAX_PIECE_OPTIONS = 300
WORDS_SHOWN = 60


def use_preset():  # a preset fills the text box; typing in it unselects the preset
    if st.session_state.cmp_preset is not None:
        st.session_state.cmp_text = compare.PRESET_TEXTS[st.session_state.cmp_preset]


def typed():
    st.session_state.cmp_preset = None


def word_list_label(n):
    return f"top {n:,} English words (wordfreq)"


first_preset = next(iter(compare.PRESET_TEXTS))
# The settings a shared link carries, each declared once (ui.linked).
PRESET = linked.Choice("cmp_preset", "sentence", first_preset, compare.PRESET_TEXTS, empty_ok=True)
TEXT = linked.Text("cmp_text", "text", compare.PRESET_TEXTS[first_preset])
WORD_LIST = linked.Choice("cmp_words", "word list", compare.DEFAULT_WORD_LIST_SIZE,
                          compare.WORD_LIST_SIZES, format_func=word_list_label)
CORPUS = linked.Choice("cmp_corpus", "corpus", next(iter(PRESETS)), [*PRESETS, WORDFREQ_CORPUS])
PIECE = linked.Choice("cmp_piece", "piece", None)  # its options: the pieces of the text
LINK_KEYS = linked.keys("cmp_")

st.title("Compare tokenizers")
st.header("How do different tokenizers cut the same sentence into pieces?")
st.markdown(
    "Type a sentence, or pick one from the notebook. Below, each tokenizer cuts it up: every "
    "**coloured chip is one token**, with its **id** under it (hover for its bytes). A piece "
    "that comes back keeps its colour. What the symbols on the chips mean is under the table."
)
trained = st.session_state.get("trained_bpe")  # a BPE trained on Build a BPE, if any
share_caption("" if trained is None else "Your own BPE from Build a BPE is not in the link: "
              "whoever opens it sees the small BPE instead.")
check_unknown_settings("cmp_", LINK_KEYS)

PRESET.check(PRESET.options, first_preset)
if "cmp_preset" not in st.session_state and "cmp_text" in st.query_params:
    st.session_state.cmp_preset = None  # a link with its own text (a preset's would be in the link)
PRESET.pills("Try a sentence", checked=True, on_change=use_preset)
text_bind = text_binding("cmp_text", "text", compare.PRESET_TEXTS[first_preset])
text = TEXT.text_area(
    "Your text", height=110, on_change=typed, bind=text_bind,
    help=f"Up to {compare.MAX_TEXT_CHARS:,} characters. Emoji, accents and any script welcome.")
if text_bind is None:
    left_out_note("text", text)
text, cut_message = compare.check_text(text or "")
if cut_message:
    st.warning(cut_message, icon=":material/content_cut:")
if not text:
    st.info("Type or paste some text above to see it cut into tokens.")
    st.stop()

size_col, corpus_col = st.columns(2)
n_words = WORD_LIST.selectbox("Word list for the word-level tokenizer", container=size_col)
if trained is None:
    corpus = CORPUS.selectbox(
        "Corpus for the small BPE", container=corpus_col,
        help="Train your own, step by step, on the Build a BPE page: it then appears here.")

# The tokenizers, the fixed-unit ones first, then the BPEs: (cache key, name, about, tokenizer)
lineup = [
    ("chars", "characters", "One token per Unicode character; the id is its code point "
     "(so the vocabulary is every possible character: 1,114,112).", compare.CodePointTokenizer()),
    ("bytes", "bytes", "One token per UTF-8 byte: only 256 ids, any text at all, but the "
     "longest sequences. An emoji is 4 tokens.", ByteTokenizer()),
    (f"words-{n_words}", f"words (top {n_words:,})",
     compare.word_list_about(word_tokenizer(n_words), n_words), word_tokenizer(n_words)),
]
if trained is not None:
    bpe_encoding = trained["result"].encoding(trained["merges"])
    lineup.append((f"trained-{compare.bpe_fingerprint(bpe_encoding)}",
                   f"your BPE: {trained['name']}",
                   f"The BPE you trained on Build a BPE, after {trained['merges']:,} merges "
                   f"({bpe_encoding.n_vocab:,} tokens).", TiktokenTokenizer(bpe_encoding)))
else:
    result = default_bpe(corpus)
    lineup.append((f"bpe-{corpus}", "small BPE", f"A byte-level BPE trained here on "
                   f"“{corpus}”: 256 bytes + {len(result.merges):,} merges. It knows the "
                   "corpus's words; everything else falls back to small pieces or bytes.",
                   TiktokenTokenizer(result.encoding())))
lineup.append(("cl100k_base", "cl100k_base", "GPT-4's byte-level BPE: 100,277 tokens learned "
               "from a huge amount of text.", TiktokenTokenizer(encoding("cl100k_base"))))
missing = []
for name, about in OPTIONAL_ENCODINGS.items():
    if is_available(name):
        lineup.append((name, name, f"{about}.", TiktokenTokenizer(encoding(name))))
    else:
        missing.append(f"{name} ({about})")

results = {key: (name, about, *tokenized(key, name, text, tok)) for key, name, about, tok in lineup}

st.subheader("How many tokens?")
# A plain table, not a scrolling grid: its headers and names wrap, so it fits a phone's width.
st.table(compare.summary_table([row for _, _, row, _ in results.values()]).style.format(
    {"Vocabulary size": "{:,}", "Tokens": "{:,}", "Characters per token": "{:.2f}"}),
    hide_index=True)
st.caption(f"{len(text):,} characters, {len(text.encode('utf-8')):,} UTF-8 bytes. More characters "
           "per token: shorter sequences for the model to read, but a bigger vocabulary.")
try:  # the experiment that answers it; a page run on its own (AppTest) has no navigation
    st.page_link("pages/which_tokens.py", icon=":material/emoji_events:", label="What does "
                 "this choice do to a model? Which tokens? trains one model per tokenizer")
except StreamlitPageNotFoundError:
    pass
render_legend(legend_lines([p for _, _, row, _ in results.values() for p in row.pieces]))
if missing:
    st.info(f"Not on this computer: {' and '.join(missing)}. While online, run "
            f"`{FETCH_COMMAND}` once to add them.", icon=":material/cloud_off:")

for key, (name, about, row, chips) in results.items():
    with st.container(border=True):
        st.subheader(name)
        st.markdown(f"**{row.n_tokens:,} tokens** · **{row.chars_per_token:.2f}** characters "
                    f"per token · vocabulary of {row.vocab_size:,}")
        st.caption(about)
        render_chips_html(chips, key=f"compare_chips_{key}")
        render_legend(hex_legend_lines(row.pieces))  # beside the hex chips it explains
        if row.unknown:
            st.caption(f"Not in the word list, so each became [UNK] ({len(row.unknown):,}):")
            st.text(", ".join(row.unknown[:200]))
            if any(map(is_number, row.unknown)):
                st.caption(f"Numbers among them: {NUMBERS_NOTE}")
        with st.expander("ids as a list"):
            st.code(compare.ids_text(row.ids), language=None, wrap_lines=True)

st.header("Which words share a piece?")
st.markdown(
    "A BPE piece is often a part of many words: ` book` starts *bookkeeping*, *bookshelf* and "
    "*booking*. That is how the model relates words it has never seen together: they share "
    "components. A word vocabulary has no such links: each entry is one whole word."
)
cl100k = results["cl100k_base"][2]
index = piece_index(n_words)
pieces = {p.id: p for p in cl100k.pieces}
options = compare.pieces_in_order(pieces, limit=MAX_PIECE_OPTIONS)
suggested = compare.suggested_piece([pieces[p] for p in options], index)


def piece_label(p):
    return (f"{display.readable(pieces[p].bytes)}   (id {p}, in "
            f"{display.count(len(index.words_with(p)), 'word')})")


piece_id = PIECE.selectbox("Pick a piece of your text (as cut by cl100k_base)", options=options,
                           default=suggested, format_func=piece_label)
words = index.words_with(piece_id)
if words:
    st.markdown(f"Found in **{display.count(len(words), 'word')}** of the top {n_words:,} (each "
                "written after a space, as inside a sentence). Most frequent first, split into "
                "their pieces (a word cut into bytes is written whole first):")
    splits = compare.word_splits(encoding("cl100k_base"), words[:WORDS_SHOWN])
    st.html(word_splits_html(splits, piece_id))
    if len(words) > WORDS_SHOWN:
        st.caption(f"… and {len(words) - WORDS_SHOWN:,} more.")
else:
    st.markdown(f"None of the top {n_words:,} words holds this piece when written after a space, "
                "as inside a sentence (a piece with no leading space often starts a text).")

distribution, summary = sharing(n_words)
st.subheader("How densely are pieces shared?")
st.markdown(
    f"The top {summary.n_words:,} words are written with **{summary.n_pieces:,}** different "
    f"cl100k_base pieces; **{summary.shared_pieces:,}** of them are found in two words or more, "
    f"and a piece is in **{summary.mean_words_per_piece:.1f}** words on average. A word "
    f"vocabulary needs all {summary.n_words:,} entries, each in exactly one word."
)
show_chart(sharing_chart, distribution)

notebook_button("compare", partial(  # the same tokenizers on this text, then this piece
    notebook.compare_notebook, text, n_words=n_words, piece=piece_id, bpe_merges=BPE_MERGES,
    bpe_corpus=None if trained else corpus, bpe=bpe_encoding if trained else None,
    bpe_name=f"your BPE: {trained['name']}" if trained else "",
    encodings=[name for name in OPTIONAL_ENCODINGS if name in results],
    figures={"tokens": {name: row.n_tokens for name, _, row, _ in results.values()},
             "ids": {name: list(row.ids) for name, _, row, _ in results.values()},
             "piece": piece_id, "words_with_piece": len(words), "pieces": summary.n_pieces,
             "shared_pieces": summary.shared_pieces}))
