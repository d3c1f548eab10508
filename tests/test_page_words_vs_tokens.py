"""AppTest of the Words vs tokens page: the slider and the text box, with awkward input.

Every number the page shows is checked against the notebook's own cells, computed here
independently of minillm.words (wordfreq + tiktoken directly).
"""

import sys

import pytest
import wordfreq
from streamlit.testing.v1 import AppTest

from conftest import app_test, run_app
from minillm.tokenizers import load_encoding

PAGE = "pages/words_vs_tokens.py"
N_KEY = "wvt_n"
TEXT_KEY = "wvt_text"
MAX_WORDS = len(wordfreq.top_n_list("en", 10**7))


@pytest.fixture(scope="module")
def enc():
    return load_encoding("cl100k_base")


def notebook_numbers(n, enc):
    """The notebook's experiment for the top n words, done by hand."""
    sentence = " ".join(wordfreq.top_n_list("en", n))
    string_size = sys.getsizeof(sentence)  # before encoding, as the notebook did
    tokens = enc.encode(sentence)
    return {
        "Characters": len(sentence),
        "UTF-8 bytes": len(sentence.encode("utf-8")),
        "cl100k_base tokens": len(tokens),
        "sys.getsizeof(sentence)": string_size,
        "sys.getsizeof(tokens)": sys.getsizeof(tokens),
        "Different tokens used": len(set(tokens)),
    }


def single_token_percent(n, enc):
    top = wordfreq.top_n_list("en", n)
    return round(100 * sum(len(enc.encode(" " + w)) == 1 for w in top) / n)


def shown_metrics(at: AppTest) -> dict[str, int]:
    return {metric.label: int(metric.value.replace(",", "")) for metric in at.metric}


def check_table(at: AppTest):
    """The unknown-words table: the last dataframe but one (the cost table comes last)."""
    return at.dataframe[-2].value


def run_page() -> AppTest:
    at = app_test(PAGE).run()
    assert not at.exception
    return at


def all_markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def expected_unknown(text, n):
    top = set(wordfreq.top_n_list("en", n))
    return [w for w in dict.fromkeys(wordfreq.tokenize(text, "en")) if w not in top]


def test_default_page(enc):
    at = run_page()
    assert "Why don't language models use whole words as their pieces?" in [h.value for h in at.header]
    # 1. the notebook's experiment at N = 100,000, each number with what it measures
    assert at.select_slider(key=N_KEY).value == 100_000
    assert shown_metrics(at) == notebook_numbers(100_000, enc)
    assert shown_metrics(at)["cl100k_base tokens"] == 205_558
    assert "4 bytes per character because one word is an emoji" in all_markdown(at)
    assert "8 bytes per token plus 56" in all_markdown(at)
    # 2. the headline and the chart: a sample of words plus bin averages, not 100,000 rows
    headline = at.subheader[0].value
    assert headline == f"{single_token_percent(100_000, enc)}% of the top 100,000 words are a single token; rare words split into pieces"
    assert headline.startswith("21% ")
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    assert "Frequency rank" in charts[0].proto.spec and "pieces" in charts[0].proto.spec
    # 3. the default text: a typo, a name and a new word are unknown; cl100k_base writes them all
    assert at.text_area(key=TEXT_KEY).value == "I textd my frend Oluwaseun about the rizzler"
    assert at.code[0].value.split() == ["textd", "oluwaseun", "rizzler"]
    table = check_table(at)
    assert table["word"].tolist() == ["i", "textd", "my", "frend", "oluwaseun", "about", "the", "rizzler"]
    assert table["tokens"].tolist() == [len(enc.encode(" " + w)) for w in table["word"]]
    assert table["known"].tolist() == ["yes", "NO: unknown", "yes", "yes", "NO: unknown", "yes", "yes", "NO: unknown"]
    assert dict(zip(table["word"], table["rank"]))["frend"] == 99_289  # a typo inside the top 100,000
    # 4. the cost table
    costs = at.dataframe[-1].value
    assert costs["vocab_size"].tolist() == [100_000, MAX_WORDS, enc.n_vocab, 50_257, 256, 407]
    assert costs["d=32"].tolist() == [v * 32 for v in costs["vocab_size"]]
    assert costs["writes_any_text"].tolist() == ["no", "no", "yes", "yes", "yes", "no"]


@pytest.mark.parametrize("n", [1_000, MAX_WORDS])
def test_slider_changes_every_number(enc, n):
    at = run_page()
    at.select_slider(key=N_KEY).set_value(n).run()
    assert not at.exception
    assert shown_metrics(at) == notebook_numbers(n, enc)
    assert at.subheader[0].value.startswith(f"{single_token_percent(n, enc)}% of the top {n:,} words")
    ascii_only = "1 byte per character because every character is plain ASCII"
    assert (ascii_only in all_markdown(at)) == (n == 1_000)
    # the word vocabulary follows N: the top 1,000 no longer knows the typo 'frend'
    assert at.code[0].value.split() == expected_unknown("I textd my frend Oluwaseun about the rizzler", n)
    costs = at.dataframe[-1].value
    assert costs["vocab_size"].iloc[0] == n
    assert costs["d=4096"].tolist() == [v * 4096 for v in costs["vocab_size"]]


AWKWARD = {
    "empty": "",
    "only punctuation": "?! ... --",
    "emoji": "😂 🦙 👩‍👩‍👧",
    "CJK": "東京タワーに行きました 北京欢迎你",
    "html": "<img src=x onerror=alert(1)>",
    "control characters": "tab\there\x00bell\x07",
    "known words only": "The cat sat on the mat.",
}


def test_text_box_takes_any_input(enc):
    at = run_page()
    for name, text in AWKWARD.items():
        at.text_area(key=TEXT_KEY).input(text).run()
        assert not at.exception, name
        assert not any(m.proto.allow_html for m in at.markdown), name  # never rendered as HTML
        words = wordfreq.tokenize(text, "en")
        if not words:
            assert any("No words to check yet" in i.value for i in at.info), name
            continue
        table = check_table(at)
        assert table["word"].tolist() == list(dict.fromkeys(words)), name
        assert table["tokens"].tolist() == [len(enc.encode(" " + w)) for w in table["word"]], name
        unknown = expected_unknown(text, 100_000)
        if unknown:
            assert at.code[0].value.split() == unknown, name
        else:
            assert not at.code, name
            assert any("include every word here" in s.value for s in at.success), name

    # HTML arrives as words, never as markup
    at.text_area(key=TEXT_KEY).input("<img src=x onerror=alert(1)>").run()
    assert check_table(at)["word"].tolist() == ["img", "src", "x", "onerror", "alert", "1"]
    assert at.code[0].value == "onerror"
    assert not any("<img" in m.value for m in at.markdown)

    # the browser stops typing at 2,000 characters (AppTest's .input() too); a client that
    # sends more anyway is cut to 2,000 by Streamlit on the server
    assert at.text_area(key=TEXT_KEY).label == "Your text (up to 2,000 characters)"
    at.text_area(key=TEXT_KEY).set_value("a" * 10_000).run()
    assert not at.exception
    table = check_table(at)
    assert table["word"].tolist() == ["a" * 2_000]
    assert table["tokens"].tolist() == [len(enc.encode(" " + "a" * 2_000))]
    assert table["pieces"].iloc[0].endswith("more)")


def test_repeated_words_and_numbers_are_counted_right(enc):
    """ "the the the" is 3 words (1 different one) written with 3 tokens; one word is "1 word"
    and "1 token"; a number is said to be a number, not listed with the unknown words."""
    at = run_page()
    at.text_area(key=TEXT_KEY).input("the the the").run()
    assert not at.exception
    assert [s.value for s in at.success][-1:] == [
        "##### The top 100,000 words include every word here (3 words, 1 different one). "
        "Try a typo or a made-up word."]
    assert f"cl100k_base wrote all 3 words with {len(enc.encode(' the the the'))} tokens." in all_markdown(at)
    assert check_table(at)["times"].tolist() == [3]
    at.text_area(key=TEXT_KEY).input("the").run()
    assert "cl100k_base wrote all 1 word with 1 token." in all_markdown(at)
    assert "1 different one)" in at.success[-1].value
    at.text_area(key=TEXT_KEY).input("I paid 42 pounds in 1999").run()
    assert not at.exception
    assert not at.code  # no unknown words: 42 and 1999 are numbers
    assert any(i.value.replace("\\", "").startswith("2 numbers here, 42, 1999: wordfreq's word list holds no number")
               for i in at.info)
    table = check_table(at).set_index("word")
    assert table.loc[["42", "1999"], "known"].tolist() == ["a number: no", "a number: no"]
    legend = [c.value for c in at.caption if c.value.startswith("␣ a space")]
    assert legend  # the pieces' symbols are explained where the pieces are


def test_page_runs_inside_the_app():
    at = run_app(PAGE)
    assert not at.exception
    assert at.title[0].value == "Words vs tokens"
