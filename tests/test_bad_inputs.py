"""Bad input on the Tokens lab pages (and Home): one AppTest per case, parametrized.

Every case runs its page fresh (caches cleared by conftest), optionally opened from a link
(``at.query_params``), then types or pastes the input. For each case:

- no exception, ever;
- where the input is refused, the page says why (the exact message is asserted);
- where it is accepted, it is shown as the text it is: every ``st.html`` body escapes it
  (``&lt;img``, never ``<img``), and every Markdown body either escapes it or holds none of it.

The Model lab's cases live in their own file.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Callable

import pytest
import wordfreq

from conftest import app_test
from minillm import compare
from minillm.bpe import readable_piece
from minillm.corpus import MAX_CHARS as MAX_CORPUS_CHARS
from ui.plain_text import plain

WVT, CMP, BPE = "pages/words_vs_tokens.py", "pages/compare.py", "pages/build_bpe.py"
PASTE = "Paste your own text"

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
EMOJI = "Our llama 🦙 waves 👋🏽 at the 🇫🇷 flag"
CJK = "東京で寿司を食べました 我爱北京天安门"
RTL = "مرحبا بالعالم שלום עולם hello"
CONTROL = "tab\there\x00nul\x07bell\x1b[31mred"
COMBINING = "e\u0301\u0301\u0301 Z\u0324\u0354\u0367\u0311\u0353 ä\u0356\u032d\u0308\u0307"
ZERO_WIDTH = "family 👨\u200d👩\u200d👧\u200d👦 zero\u200bwidth joi\u200dner"
MARKDOWN = "**bold** $x^2$ :red[hi] [a](javascript:alert(1)) ` <b>"

# A tag opened in a Markdown body: Streamlit would drop it silently (or, with unsafe HTML on,
# render it). A user's "<" must arrive escaped ("\<") or inside a code span.
RAW_TAG = re.compile(r"(?<!\\)<(?:img|script|b)\b", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# What a page shows, gathered from the AppTest tree


def html_bodies(at) -> list[str]:
    """The HTML the page drew, less the app's own seat cookie script (ui.seats: a token the
    server made, checked against its format; no user text goes in it)."""
    from ui import seats

    return [element.proto.body for element in at.get("html")
            if f"document.cookie = '{seats.COOKIE}=" not in element.proto.body]


def markdown_bodies(at) -> list[str]:
    bodies = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success",
                                   "title", "header", "subheader") for e in getattr(at, kind)]
    return bodies + [m.value for m in at.metric]


def messages(at) -> str:
    return "\n".join(e.value for kind in ("info", "warning", "error", "caption") for e in getattr(at, kind))


def assert_shown_as_text(at) -> None:
    for body in html_bodies(at):
        assert "<img" not in body.lower() and "<script" not in body.lower(), body[:300]
    for body in markdown_bodies(at):
        assert not RAW_TAG.search(body), body[:300]
    assert not any(m.proto.allow_html for m in at.markdown)


def chips(at) -> str:
    return "".join(body for body in html_bodies(at) if "mll-chips" in body)


# ---------------------------------------------------------------------------------------------
# The cases


@dataclass
class Case:
    page: str
    link: dict[str, str] = field(default_factory=dict)  # query parameters the page opens with
    steps: list[tuple[str, str, object]] = field(default_factory=list)  # (widget kind, key, value)
    check: Callable = lambda at: None  # asserts what the page shows


def typed_in(page: str, text: str, check: Callable) -> Case:
    key = {CMP: "cmp_text", WVT: "wvt_text"}[page]
    return Case(page, steps=[("text_area", key, text)], check=check)


def pasted(text: str, check: Callable, sentence: str | None = None) -> Case:
    steps = [("radio", "bpe_corpus", PASTE), ("text_area", "bpe_text", text)]
    if sentence is not None:
        steps.append(("text_input", "bpe_sentence", sentence))
    return Case(BPE, steps=steps, check=check)


def shows(read: Callable, where: str, *fragments: str) -> Callable:
    """A check that every fragment is in `read(at)` (the page's messages, its chips...)."""
    def check(at):
        shown = read(at)
        for fragment in fragments:
            assert fragment in shown, f"{fragment!r} not in {where}:\n{shown[:2000]}"
    return check


def says(*fragments: str) -> Callable:
    return shows(messages, "the messages", *fragments)


def all_of(*checks: Callable) -> Callable:
    def check(at):
        for one in checks:
            one(at)
    return check


def chips_hold(*texts: str) -> Callable:
    return shows(chips, "the chips", *texts)


def holds(predicate: Callable, what: str) -> Callable:
    def check(at):
        assert predicate(at), what
    return check


def checked_words_are(text: str) -> Callable:
    """Words vs tokens lists exactly the words wordfreq finds in the text, in order, once each."""
    def check(at):
        table = next(d.value for d in at.dataframe if "known" in d.value.columns)
        assert table["word"].tolist() == list(dict.fromkeys(wordfreq.tokenize(text, "en")))
    return check


def unknown_words_are(*expected: str) -> Callable:
    def check(at):
        assert at.code[0].value.split() == list(expected)
    return check


def compare_counts(text: str) -> Callable:
    """The characters and bytes rows count the whole text (or its first 20,000 characters)."""
    kept = text[:compare.MAX_TEXT_CHARS]

    def check(at):
        table = at.table[0].value  # a plain table (it fits a phone)
        counts = dict(zip(table["Tokenizer"], table["Tokens"]))
        assert counts["characters"] == len(kept)
        assert counts["bytes"] == len(kept.encode("utf-8"))
    return check


def trained_on(name: str) -> Callable:
    def check(at):
        assert at.session_state["trained_bpe"]["name"] == name
    return check


def metrics_are_plain(at) -> None:
    """The merge shown (left, right, new piece) is its readable text, Markdown-escaped."""
    trained = at.session_state["trained_bpe"]
    latest = trained["result"].merges[trained["merges"] - 1]
    pieces = [readable_piece(b) for b in (latest.left_bytes, latest.right_bytes, latest.new_bytes)]
    if at.metric:
        assert [m.value for m in at.metric] == [plain(p) for p in pieces]
    else:  # a piece too long for a metric's box: the three whole, in a wrapped table
        body = next(h.proto.body for h in at.get("html") if "<th>New piece</th>" in h.proto.body)
        assert [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)] == pieces


def step_to_merge_of(piece: bytes) -> Callable:
    """Move the step slider to the merge that made `piece`, then check the metrics."""
    def check(at):
        merges = at.session_state["trained_bpe"]["result"].merges
        step = next(i for i, m in enumerate(merges, start=1) if m.new_bytes == piece)
        at.select_slider(key="bpe_step").set_value(step).run()
        assert not at.exception
        metrics_are_plain(at)
        assert at.metric[2].value == plain(readable_piece(piece))
    return check


CASES = {
    # --- Compare tokenizers: the text box ---------------------------------------------------
    "compare/empty": typed_in(CMP, "", says("Type or paste some text above")),
    "compare/whitespace only": typed_in(CMP, "  \n\t  ", all_of(
        compare_counts("  \n\t  "), chips_hold("␣", "↵", "→"))),
    "compare/one word": typed_in(CMP, "bookkeepers", compare_counts("bookkeepers")),
    "compare/60,000-character paste": typed_in(CMP, "the cat sat. " * 4_616, all_of(
        says("Your text has 60,008 characters; only the first 20,000 are tokenized",
             "too long to go in a link (60,008 characters)"),
        compare_counts("the cat sat. " * 4_616))),
    "compare/emoji": typed_in(CMP, EMOJI, all_of(compare_counts(EMOJI), chips_hold("🦙", "⟨F0 9F⟩"))),
    "compare/CJK": typed_in(CMP, CJK, all_of(compare_counts(CJK), chips_hold("東"))),
    "compare/right-to-left": typed_in(CMP, RTL, all_of(compare_counts(RTL), chips_hold("ש"))),
    "compare/control characters and NUL": typed_in(CMP, CONTROL, all_of(
        compare_counts(CONTROL), chips_hold("␀", "␇", "␛"))),
    "compare/10,000-character word": typed_in(CMP, "x" * 10_000, compare_counts("x" * 10_000)),
    "compare/<img onerror>": typed_in(CMP, IMG, all_of(
        compare_counts(IMG), chips_hold("&lt;img"))),
    "compare/<script>": typed_in(CMP, SCRIPT, chips_hold("&lt;", "script", "&gt;")),
    "compare/combining marks": typed_in(CMP, COMBINING, compare_counts(COMBINING)),
    "compare/zero-width joiners": typed_in(CMP, ZERO_WIDTH, compare_counts(ZERO_WIDTH)),
    "compare/Markdown syntax": typed_in(CMP, MARKDOWN, compare_counts(MARKDOWN)),
    # --- Compare tokenizers: links -----------------------------------------------------------
    "compare/malformed link": Case(CMP, link={
        "cmp_preset": "nope", "cmp_words": "5", "cmp_corpus": IMG, "cmp_piece": "zz",
        "cmp_txt": "typo"}, check=says(
        "The link asked for sentence = 'nope', which isn't a valid choice",
        "so the default (BPE encoder (the notebook)) is used",
        "The link asked for word list = '5', which isn't a valid choice",
        "The link asked for corpus = '\\<img src\\=x onerror\\=alert\\(1\\)\\>'",
        "The link asked for piece = 'zz'",
        "The link has settings this page doesn't have (cmp\\_txt)")),
    "compare/link with HTML text": Case(CMP, link={"cmp_text": IMG}, check=all_of(
        compare_counts(IMG), chips_hold("&lt;img"),
        holds(lambda at: at.text_area(key="cmp_text").value == IMG, "the box holds the text"),
        holds(lambda at: at.pills(key="cmp_preset").value is None, "no preset is picked"))),
    "compare/link with a text too long for a link": Case(CMP, link={"cmp_text": "🦙" * 400},
                                                        check=says("too long for a link")),
    # --- Words vs tokens ---------------------------------------------------------------------
    "words/empty": typed_in(WVT, "", says("No words to check yet")),
    "words/whitespace only": typed_in(WVT, " \n\t ", says("No words to check yet")),
    "words/one word": typed_in(WVT, "zorblax", unknown_words_are("zorblax")),
    "words/emoji only": typed_in(WVT, "🦙👋🏽 😂", checked_words_are("🦙👋🏽 😂")),
    "words/right-to-left": typed_in(WVT, "zorblax שלום مرحبا", all_of(
        checked_words_are("zorblax שלום مرحبا"),
        holds(lambda at: "zorblax" in at.code[0].value, "the made-up word is named"))),
    "words/control characters and NUL": typed_in(WVT, "frend\x00 \x07zorblax\x1b", all_of(
        checked_words_are("frend zorblax"), unknown_words_are("zorblax"))),
    "words/10,000-character word": typed_in(WVT, "a" * 10_000, all_of(
        holds(lambda at: at.text_area(key="wvt_text").value == "a" * 2_000, "cut to 2,000"),
        checked_words_are("a" * 2_000))),
    "words/<img onerror>": typed_in(WVT, IMG, unknown_words_are("onerror")),
    "words/malformed link": Case(WVT, link={"wvt_n": "abc", "wvt_text": "b" * 2_500}, check=says(
        "The link asked for N = 'abc', which isn't a valid choice, so the default (100,000) is used",
        "The link's text has 2,500 characters; only the first 2,000 are used")),
    # --- Build a BPE -------------------------------------------------------------------------
    "bpe/empty paste": pasted("", says("The text is empty")),
    "bpe/whitespace only": pasted(" \n\n\t ", says("The text is empty")),
    "bpe/one word": pasted("hello", says("it needs at least two words")),
    "bpe/60,000-character paste": pasted("the cat sat " * 5_000, says(
        f"That text has 60,000 characters; the limit is {MAX_CORPUS_CHARS:,}")),
    "bpe/control characters and NUL": pasted("the cat\x00 sat\x07 on the mat\x1b", all_of(
        says("Removed 3 invisible control character(s)."), trained_on("your text"))),
    "bpe/emoji CJK and right-to-left": pasted(f"{EMOJI}\n{CJK}\n{RTL}", all_of(
        trained_on("your text"), metrics_are_plain)),
    "bpe/10,000-character word": pasted("a" * 10_000 + " b", all_of(
        trained_on("your text"), metrics_are_plain)),
    "bpe/HTML corpus and sentence": pasted(f"{IMG} {SCRIPT}\n" * 3, all_of(
        trained_on("your text"), metrics_are_plain, chips_hold("&lt;img")), sentence=IMG),
    "bpe/Markdown pieces in the metrics": pasted("**bold** **more** $x$ $y$ " * 3,
                                                 step_to_merge_of(b"**")),
    "bpe/combining marks and zero-width joiners": pasted(f"{COMBINING}\n{ZERO_WIDTH}", all_of(
        trained_on("your text"), metrics_are_plain), sentence=ZERO_WIDTH),
    "bpe/malformed link": Case(BPE, link={
        "bpe_corpus": "nope", "bpe_merges": "abc", "bpe_split": "maybe", "bpe_step": "9999",
        "bpe_sentence": "s" * 400, "bpe_merge": "5"}, check=says(
        "The link asked for text to learn from = 'nope', which isn't a valid choice",
        "The link asked for merges = 'abc', which isn't a valid choice (a whole number from 1 "
        "to 2,000), so the default (200) is used",
        "The link asked for split = 'maybe', which isn't a valid choice (true or false), so "
        "the default (on) is used",
        "The link asked for merges applied = '9999', which isn't a valid choice (a whole number "
        "from 0 to 45), so the default (45) is used",
        "The link's sentence has 400 characters; only the first 300 are used",
        "The link has settings this page doesn't have (bpe\\_merge)")),
    "bpe/link out of range": Case(BPE, link={"bpe_merges": "0", "bpe_words": "50.5",
                                             "bpe_corpus": "Most common English words (wordfreq)"},
                                  check=says("merges = '0', which isn't a valid choice",
                                             "how many words = '50\\.5', which isn't a valid")),
    # --- Home, through app.py ----------------------------------------------------------------
    "home/unknown and HTML parameters": Case("app.py", link={"x": IMG, "wvt_n": SCRIPT},
                                             check=holds(lambda at: at.title[0].value ==
                                                         "MiniLLM Lab", "Home opens")),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input(case: Case):
    at = app_test(case.page)
    at.query_params.update(case.link)
    at.run()
    assert not at.exception
    for kind, key, value in case.steps:  # set_value: a client can send more than max_chars
        getattr(at, kind)(key=key).set_value(value).run()
        assert not at.exception
    case.check(at)
    assert not at.exception
    assert_shown_as_text(at)
