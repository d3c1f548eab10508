"""AppTest of the Home page and of the router (app.py)."""

import shutil
import textwrap

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, app_test, run_app

QUESTIONS = ["What is a token, and why?", "How does a language model learn?"]
LAB_FILES = [
    ("words_vs_tokens.py", "Words vs tokens"), ("compare.py", "Compare tokenizers"),
    ("build_bpe.py", "Build a BPE"), ("train.py", "Train"), ("generate.py", "Generate"),
    ("attention.py", "Attention"),
]
LAB_TITLES = [title for _, title in LAB_FILES]
PAGE_FILES = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "pages").glob("*.py"))


def all_text(at: AppTest) -> str:
    """Every title, header, markdown, caption and page-link label the run produced, joined."""
    parts = []
    for elements in (at.title, at.header, at.subheader, at.markdown, at.caption, at.info,
                     at.get("page_link")):
        parts.extend(str(element.value) for element in elements)
    return "\n".join(parts)


def coming_soon(at: AppTest) -> int:
    return sum(caption.value == "Coming soon" for caption in at.caption)


def test_home_asks_the_notebooks_questions():
    at = app_test("pages/home.py").run()
    assert not at.exception
    assert at.title[0].value == "MiniLLM Lab"
    headers = [header.value for header in at.header]
    for question in QUESTIONS:
        assert question in headers


def test_home_lays_out_the_path_through_the_labs_in_order():
    at = app_test("pages/home.py").run()
    assert not at.exception
    steps = [subheader.value for subheader in at.subheader][1:]  # [0] is the tagline
    assert steps == [f"{step}. {title}" for step, title in enumerate(LAB_TITLES, start=1)]
    # one question per lab, as a big (h5) line under its name
    assert sum(markdown.value.startswith("##### ") for markdown in at.markdown) == len(LAB_TITLES)


def test_home_quick_start_names_the_loss_floor():
    at = app_test("pages/home.py").run()
    assert not at.exception
    assert "One-minute classroom quick start" in [header.value for header in at.header]
    text = all_text(at)
    assert "0.384" in text
    assert "ambiguous" in text


def test_home_renders_no_raw_html():
    at = app_test("pages/home.py").run()
    assert not at.exception
    assert not any(markdown.proto.allow_html for markdown in at.markdown)


def test_router_runs_home_by_default_with_the_sidebar_footer():
    at = run_app()
    assert not at.exception
    assert at.title[0].value == "MiniLLM Lab"
    assert [header.value for header in at.header][:2] == QUESTIONS
    assert any("Runs offline" in caption.value for caption in at.sidebar.caption)
    # Home is registered with st.navigation: switching to it by file works.
    at.switch_page("pages/home.py").run()
    assert not at.exception
    assert at.title[0].value == "MiniLLM Lab"


def test_router_links_every_lab_that_exists_and_names_the_others():
    at = run_app()
    assert not at.exception
    links = {link.value: link.proto.page for link in at.get("page_link")}
    linked = [title for title in LAB_TITLES if f"Open {title}" in links]
    for title in linked:
        assert links[f"Open {title}"], f"{title} links to no url_path"
    # a lab is linked exactly when its page file exists (and is registered: see below)
    existing = [title for filename, title in LAB_FILES if (ROOT / "pages" / filename).exists()]
    assert linked == existing
    # every lab without a link says so instead
    assert coming_soon(at) == len(LAB_TITLES) - len(linked)
    assert len(links) == len(linked)


@pytest.mark.parametrize("page_file", PAGE_FILES)
def test_every_page_file_is_registered_and_runs_from_the_router(page_file):
    """Every file in pages/ is an st.Page in app.py, and runs from the router without error."""
    try:
        at = run_app(page_file)
    except ValueError as error:  # switch_page: the file is not a registered navigation page
        pytest.fail(f"{page_file} is not registered in app.py's st.navigation: {error}")
    assert not at.exception, at.exception


def test_home_links_registered_labs_and_survives_unregistered_ones(tmp_path):
    """In a scratch app: Train exists and is registered (a link), Generate exists but is
    not registered (plain text, no crash), the rest do not exist (plain text)."""
    (tmp_path / "pages").mkdir()
    shutil.copy(ROOT / "pages" / "home.py", tmp_path / "pages" / "home.py")
    (tmp_path / "pages" / "train.py").write_text("import streamlit as st\nst.title('Train')\n")
    (tmp_path / "pages" / "generate.py").write_text("import streamlit as st\nst.title('Generate')\n")
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        import streamlit as st
        st.navigation([
            st.Page("pages/home.py", title="Home", url_path="home", default=True),
            st.Page("pages/train.py", title="Train", url_path="train"),
        ]).run()
    """))
    at = AppTest.from_file(str(tmp_path / "app.py"), default_timeout=60).run()
    assert not at.exception
    links = {link.value: link.proto.page for link in at.get("page_link")}
    assert links == {"Open Train": "train"}
    assert coming_soon(at) == len(LAB_TITLES) - 1

    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.title[0].value == "Train"
