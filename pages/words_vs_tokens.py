"""Words vs tokens: why language models cut text into pieces smaller than words.

The notebook's first experiment (the top N English words joined into one string, measured as
text and as cl100k_base tokens), then: tokens per word against how common the word is, words a
word vocabulary has never seen, and what each choice costs in embedding-table size.
Layout only: every number comes from `minillm.words`.
"""

import streamlit as st

from minillm import display, words
from minillm.charts.words import tokens_per_word_chart
from minillm.tokenizers import EncodingUnavailable, load_encoding
from ui.charts import show_chart
from ui.chips import render_legend
from ui import linked
from ui.links import check_unknown_settings, left_out_note, share_caption, text_binding
from ui.plain_text import plain
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py

ENCODING = "cl100k_base"
N_CHOICES = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, words.MAX_WORDS]
EXAMPLE_RANKS = [1, 10, 100, 1_000, 10_000, 30_000, 100_000, 300_000]
DEFAULT_TEXT = "I textd my frend Oluwaseun about the rizzler"
DEFAULT_N = 100_000
# The settings a shared link carries, each declared once (ui.linked).
N = linked.Choice("wvt_n", "N", DEFAULT_N, N_CHOICES, format_func="{:,}".format)
TEXT = linked.Text("wvt_text", "text", DEFAULT_TEXT, max_chars=words.MAX_TEXT_CHARS)
LINK_KEYS = linked.keys("wvt_")


# Shared by every student, read-only: tables of the top 100,000 and of all words, word ranks.
TABLE_SIZES = (100_000, words.MAX_WORDS)  # the default N needs only the smaller, faster table


@st.cache_resource(show_spinner=False)
def word_table(size: int, encoding_name: str):
    return words.tokens_per_word(words.top_words(size), load_encoding(encoding_name))


def top_table(n: int, encoding_name: str):
    """The first n rows of the smallest shared table that holds them (a view, not a copy)."""
    return word_table(next(s for s in TABLE_SIZES if s >= n), encoding_name).iloc[:n]


@st.cache_resource(show_spinner=False)
def word_ranks():
    return words.word_ranks()


# Small per-N (or per-text) results: copied per caller, bounded.
@st.cache_data(max_entries=len(N_CHOICES), show_spinner=False)
def sizes(n: int, encoding_name: str):
    return words.size_comparison(n, load_encoding(encoding_name))


@st.cache_data(max_entries=len(N_CHOICES), show_spinner=False)
def chart_data(n: int, encoding_name: str):
    table = top_table(n, encoding_name)
    return (words.sample_by_log_rank(table), words.mean_tokens_by_log_rank(table),
            words.single_token_share(table), words.single_token_share(table, "tokens_no_space"),
            words.coverage(table["word"]))


@st.cache_data(max_entries=64, show_spinner=False)
def checked(text: str, n: int, encoding_name: str):
    return words.vocabulary_check(text, word_ranks(), n, load_encoding(encoding_name))


def measure(column, label: str, value: int, meaning: str) -> None:
    """A big number with one plain sentence saying what it measures."""
    with column:
        st.metric(label, f"{value:,}", border=True)
        st.markdown(meaning)


st.title("Words vs tokens")
st.header("Why don't language models use whole words as their pieces?")
st.markdown(
    "#### A language model reads text as a list of numbers, one number per piece. "
    "Whole words look like the obvious pieces. Let's measure what that would cost."
)
share_caption()
check_unknown_settings("wvt_", LINK_KEYS)

try:
    load_encoding(ENCODING)
except EncodingUnavailable as error:
    st.error(str(error))
    st.stop()

# ---------------------------------------------------------------------------------------------
st.header("1. How many words does English have?", divider="gray")
n = N.select_slider("How many of the most common English words (from wordfreq)?")
size = sizes(n, ENCODING)

st.markdown(f"##### Like the notebook, we join the top {n:,} words with spaces into one long string, then let {ENCODING} (GPT-4's tokenizer) cut it into tokens.")
text_cols = st.columns(3)
measure(text_cols[0], "Characters", size.characters, "Letters, spaces and symbols in the string: `len(sentence)`.")
measure(text_cols[1], "UTF-8 bytes", size.utf8_bytes, "Its size saved in a file. Letters like é or 😂 take 2 to 4 bytes.")
measure(text_cols[2], f"{ENCODING} tokens", size.tokens, "How many pieces the tokenizer cut it into: `len(enc.encode(sentence))`.")
python_cols = st.columns(3)
measure(python_cols[0], "sys.getsizeof(sentence)", size.string_getsizeof,
        f"The notebook's first number: the memory Python uses for the string. It keeps "
        f"{size.python_bytes_per_char} byte{'s' if size.python_bytes_per_char > 1 else ''} per character "
        + ("because one word is an emoji." if size.python_bytes_per_char == 4 else "because every character is plain ASCII."))
measure(python_cols[1], "sys.getsizeof(tokens)", size.tokens_getsizeof,
        "The notebook's second number: the memory of the list itself, 8 bytes per token plus 56. "
        "It counts the tokens, it does not weigh them.")
measure(python_cols[2], "Different tokens used", size.distinct_tokens,
        f"Out of the {load_encoding(ENCODING).n_vocab:,} pieces {ENCODING} has.")
st.success(
    f"##### {n:,} words need a vocabulary of {n:,} entries, and it still misses every word not on the list. "
    f"{ENCODING} wrote all of them with {size.distinct_tokens:,} different pieces, "
    f"{size.characters_per_token:.1f} characters per token, from a fixed menu that can write any text."
)

# ---------------------------------------------------------------------------------------------
st.header("2. Common words are one token, rare words split", divider="gray")
with st.spinner(f"Tokenizing the top {n:,} words one by one (once per server, a few seconds)…"):
    sample, bins, single_share, single_share_bare, covered = chart_data(n, ENCODING)
st.subheader(f"{single_share:.0%} of the top {n:,} words are a single token; rare words split into pieces")
show_chart(tokens_per_word_chart, sample, bins)
st.markdown(
    f"Each word is measured with a space in front (␣the, not the; ␣ stands for a space), as it appears "
    f"in a sentence: that is how the tokenizer learned them. At the very start of a text, without the "
    f"space, only {single_share_bare:.0%} are one token. Point at a dot to see the word and its pieces."
)
st.markdown(f"The top {n:,} words make up {covered:.1%} of English text: even this list meets a word it "
            f"does not know about once every {1 / max(1 - covered, 1e-9):,.0f} words.")
examples = top_table(n, ENCODING).iloc[[r - 1 for r in EXAMPLE_RANKS if r <= n]]
st.dataframe(examples[["rank", "word", "tokens", "pieces"]], hide_index=True, width="stretch",
             column_config={"rank": st.column_config.NumberColumn(format="localized")})

# ---------------------------------------------------------------------------------------------
st.header("3. Words it has never seen", divider="gray")
st.markdown(f"##### Type a typo, a name or a brand-new word. A vocabulary of the top {n:,} words has no number for them; {ENCODING} still writes each one, in pieces.")


@st.fragment  # typing reruns only this section: the chart and numbers above stay as they are
def unknown_words_section(n: int) -> None:
    # Streamlit itself cuts the box's value to max_chars, on the server too (and a link's, silently).
    bind = text_binding("wvt_text", "text", DEFAULT_TEXT)  # only a text that fits in a link
    text = TEXT.text_area(f"Your text (up to {words.MAX_TEXT_CHARS:,} characters)", bind=bind)
    if bind is None:
        left_out_note("text", text)
    table = checked(text, n, ENCODING)
    if table.empty:
        st.info("No words to check yet: type a few words above (punctuation alone is not a word).")
    else:
        found = words.check_summary(table)
        kinds = f"{display.count(found.words, 'word')}, {display.count(found.distinct, 'different one')}"
        if found.unknown:
            st.error(f"##### The word vocabulary (top {n:,}) knows {found.known} of the {kinds} here. "
                     f"It has no number for {display.count(len(found.unknown), 'word')}:")
            st.code("   ".join(found.unknown), language=None)
        elif found.known == found.distinct:
            st.success(f"##### The top {n:,} words include every word here ({kinds}). Try a typo or a made-up word.")
        if found.numbers:
            st.info(f"{display.count(len(found.numbers), 'number')} here, {plain(', '.join(found.numbers))}: {words.NUMBERS_NOTE}",
                    icon=":material/pin:")
        st.markdown(f"{ENCODING} wrote all {display.count(found.words, 'word')} with {display.count(found.tokens, 'token')}. "
                    "A rank is the word's place in wordfreq's list: a word vocabulary knows it only if N reaches it.")
        render_legend(display.legend_lines(table["pieces"]))
        table["known"] = [("a number: no" if number else "NO: unknown") if not known else "yes"
                          for known, number in zip(table["known"], table.pop("number"))]
        st.dataframe(table, hide_index=True, width="stretch", placeholder="not in wordfreq", column_config={
            "known": st.column_config.TextColumn(f"in the top {n:,}?"),
            "rank": st.column_config.NumberColumn("wordfreq rank", format="localized"),
            "tokens": st.column_config.NumberColumn(f"{ENCODING} tokens"),
            "times": st.column_config.NumberColumn("times in the text", format="localized"),
            "pieces": st.column_config.TextColumn("pieces (␣ is a space)"),
        })


unknown_words_section(n)

# ---------------------------------------------------------------------------------------------
st.header("4. The cost: one row of numbers per vocabulary entry", divider="gray")
st.markdown(
    "##### A model stores a list of d_model learned numbers for every entry of its vocabulary: its embedding table. "
    "The notebook's model uses d_model = 32; GPT-2 uses 768, and large models 4,096. "
    "The model's output layer needs another table of the same size."
)
costs = words.embedding_comparison(n, size.distinct_characters)
costs["writes_any_text"] = costs["writes_any_text"].map({True: "yes", False: "no"})
st.dataframe(costs, hide_index=True, width="stretch", column_config={
    "vocabulary": st.column_config.TextColumn("way of cutting text", width="medium"),
    "vocab_size": st.column_config.NumberColumn("entries (V)", format="localized"),
    "writes_any_text": st.column_config.TextColumn("writes any text?"),
    **{f"d={d}": st.column_config.NumberColumn(f"V × {d}", format="localized") for d in words.D_MODELS},
})
word_row, bpe_row = costs.iloc[0], costs.iloc[2]
st.markdown(
    f"With d_model = 32, a word vocabulary of {n:,} words costs {word_row['d=32']:,} numbers and still cannot write "
    f"a new word; {ENCODING} costs {bpe_row['d=32']:,} and can write anything. Bytes and characters are tiny "
    "tables, but make every text many times longer: BPE sits in between."
)
