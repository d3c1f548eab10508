"""AppTest of the Home page and of the router (app.py), against the one list of pages."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, app_test, run_app
from ui.pages_list import HOME, LABS, PAGES

QUESTIONS = ["What is a token, and why?", "How does a language model learn?"]
LAB_TITLES = [lab.title for lab in LABS]
PAGE_FILES = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "pages").glob("*.py"))


def all_text(at: AppTest) -> str:
    """Every title, header, markdown, caption and page-link label the run produced, joined."""
    parts = []
    for elements in (at.title, at.header, at.subheader, at.markdown, at.caption, at.info,
                     at.get("page_link")):
        parts.extend(str(element.value) for element in elements)
    return "\n".join(parts)


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


def test_the_list_of_pages_is_the_pages_folder():
    """One list: every file in pages/ is in ui.pages_list exactly once, and nothing else is."""
    files = [page.file for page in PAGES]
    assert sorted(files) == PAGE_FILES
    assert len(set(files)) == len(files)
    assert len({page.url_path for page in PAGES}) == len(PAGES)
    assert HOME.file == "pages/home.py" and HOME.url_path == ""  # the default page: the root


def test_app_registers_the_list_and_writes_no_page_of_its_own():
    """app.py builds its navigation from ui.pages_list: no second list of page files there."""
    source = (ROOT / "app.py").read_text()
    assert not re.findall(r"pages/\w+\.py", source)
    assert "Add, in this order" not in source


def test_home_links_every_lab_in_the_list_with_its_address():
    at = run_app()
    assert not at.exception
    links = {link.value: link.proto.page for link in at.get("page_link")}
    assert links == {f"Open {lab.title}": lab.url_path for lab in LABS}
    assert "Coming soon" not in all_text(at)


def test_home_run_on_its_own_names_each_labs_address():
    """Without app.py (AppTest of the file alone) no page is registered: addresses as text."""
    at = app_test("pages/home.py").run()
    assert not at.exception
    text = all_text(at)
    for lab in LABS:
        assert f"Open {lab.title} at /{lab.url_path}" in text


@pytest.mark.parametrize("page_file", PAGE_FILES)
def test_every_page_file_is_registered_and_runs_from_the_router(page_file):
    """Every file in pages/ is an st.Page in app.py, and runs from the router without error."""
    try:
        at = run_app(page_file)
    except ValueError as error:  # switch_page: the file is not a registered navigation page
        pytest.fail(f"{page_file} is not registered in app.py's st.navigation: {error}")
    assert not at.exception, at.exception
