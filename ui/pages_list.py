"""The app's pages, in lesson order: the one list app.py registers, Home renders and tests read.

Plain data, no Streamlit, so a test (or a worksheet generator) can read it without running the
app. Every page keeps a stable ``url_path``: links in worksheets, a teacher's bookmarks and the
browser test use it. Home is served at the root address (Streamlit gives the default page the
path "", and refuses any other for it), and ``/home`` is an address for it too (``HOME_ALIAS``:
app.py registers a hidden page there that sends the browser to the root).

>>> [page.url_path for page in PAGES][:3]
['', 'words_vs_tokens', 'compare']
>>> page_by_file("pages/train.py").title
'Train'
>>> [section for section, _ in sections()]
['Start', 'Tokens lab', 'Model lab']
>>> len(LABS) == len(PAGES) - 1 and HOME not in LABS
True
"""

from __future__ import annotations

from typing import NamedTuple


class PageInfo(NamedTuple):
    file: str  # relative to the app's folder, as st.Page and st.page_link take it
    title: str
    icon: str  # a :material/...: icon is drawn from Streamlit's bundled font, never fetched
    url_path: str
    section: str
    question: str  # the one question the page answers, as Home lists it


PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/home.py", "Home", ":material/home:", "", "Start",
             "What is a token, and how does a language model learn?"),
    PageInfo("pages/words_vs_tokens.py", "Words vs tokens", ":material/text_fields:",
             "words_vs_tokens", "Tokens lab",
             "Why are whole words a bad way to cut up text?"),
    PageInfo("pages/compare.py", "Compare tokenizers", ":material/compare_arrows:",
             "compare", "Tokens lab",
             "How do different tokenizers cut up the same sentence?"),
    PageInfo("pages/build_bpe.py", "Build a BPE", ":material/construction:",
             "build_bpe", "Tokens lab",
             "How does a tokenizer learn its pieces from text?"),
    PageInfo("pages/train.py", "Train", ":material/model_training:", "train", "Model lab",
             "How does a model learn to guess the next word, and when does it stop improving?"),
    PageInfo("pages/generate.py", "Generate", ":material/edit_note:", "generate", "Model lab",
             "What does the trained model write, and why does it ramble?"),
    PageInfo("pages/attention.py", "Attention", ":material/visibility:", "attention",
             "Model lab", "Which earlier words does the model look at when it guesses?"),
    PageInfo("pages/which_tokens.py", "Which tokens?", ":material/emoji_events:",
             "which_tokens", "Model lab",
             "Which way of cutting text into tokens makes the best model?"),
    PageInfo("pages/class_board.py", "Class board", ":material/leaderboard:", "class_board",
             "Model lab", "How did everyone's runs in the class compare?"),
)

HOME = PAGES[0]
HOME_ALIAS = "home"  # /home opens Home too: worksheets and bookmarks have used that address
LABS: tuple[PageInfo, ...] = PAGES[1:]  # what Home lists as the path through the labs


def sections() -> list[tuple[str, list[PageInfo]]]:
    """The pages grouped by section, sections and pages in lesson order."""
    grouped: dict[str, list[PageInfo]] = {}
    for page in PAGES:
        grouped.setdefault(page.section, []).append(page)
    return list(grouped.items())


def page_by_file(file: str) -> PageInfo:
    """The page whose file is ``file`` (e.g. "pages/train.py"); KeyError if none."""
    for page in PAGES:
        if page.file == file:
            return page
    raise KeyError(file)
