"""The Compare tokenizers page's shared, cached resources: tokenizers, indexes and results.

Read-only and shared by every student on the server (``st.cache_resource``), bounded by
``max_entries``; per-text results are bounded in bytes too (`ui.bounded_cache`).
"""

import streamlit as st

from minillm import compare
from minillm.bpe import train_bpe
from minillm.corpus import PRESETS
from minillm.tokenizers import load_encoding
from ui.bounded_cache import BoundedCache
from ui.chips import token_chips_html

WORDFREQ_CORPUS = "Top 10,000 English words (wordfreq)"
BPE_MERGES = 500  # a small BPE: the presets run out of pairs to merge before this


@st.cache_resource(max_entries=4, show_spinner=False)
def encoding(name):
    return load_encoding(name)


@st.cache_resource(max_entries=3, show_spinner="Loading the word list…")
def word_tokenizer(n):
    return compare.word_list_tokenizer(n)


@st.cache_resource(max_entries=3, show_spinner="Training a small BPE…")
def default_bpe(corpus_name):
    from wordfreq import top_n_list
    lines = top_n_list("en", 10_000) if corpus_name == WORDFREQ_CORPUS else PRESETS[corpus_name]
    return train_bpe("\n".join(lines), BPE_MERGES)


@st.cache_resource(max_entries=3, show_spinner="Finding which words share each piece…")
def piece_index(n):
    return compare.word_piece_index(encoding("cl100k_base"), n)


@st.cache_data(max_entries=3, show_spinner=False)
def sharing(n):
    return compare.sharing_distribution(piece_index(n)), compare.sharing_summary(piece_index(n))


TOKENIZED_ENTRIES, TOKENIZED_MB = 200, 64  # a long text's pieces and chips are a few MB


@st.cache_resource(show_spinner=False)
def _tokenized_cache() -> BoundedCache:
    return BoundedCache(TOKENIZED_ENTRIES, TOKENIZED_MB * 1e6)


def tokenized(key, name, text, tokenizer):
    """One text through one tokenizer, and its chips; `key` names the tokenizer uniquely.

    Shared by the whole server (read-only: callers must not change the result) and bounded
    in bytes as well as entries.
    """
    def make():
        row = compare.tokenize(name, tokenizer, text)
        unknown_id = getattr(tokenizer, "unknown_id", None)  # a word-level tokenizer's [UNK]
        return row, token_chips_html(row.pieces, total=row.n_tokens, unknown_id=unknown_id)

    return _tokenized_cache().get((key, name, text), make)
