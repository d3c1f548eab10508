"""The real app in a real browser: every page in the sidebar navigation renders, no exception.

Pages are read from the sidebar at run time, so a lab registered in app.py later is
visited without touching this file. One full-page screenshot per page is saved to
$MINILLM_ARTIFACTS/screenshots/ (default ROOT/artifacts/screenshots/) for a human to look at.
"""

from urllib.parse import urlparse

import pytest

from conftest import ROOT

pytestmark = pytest.mark.browser

NAV_LINKS = "[data-testid='stSidebarNav'] a"


def screenshot_name(url: str) -> str:
    """'http://host/' -> 'home', 'http://host/build_bpe' -> 'build_bpe'."""
    return urlparse(url).path.strip("/") or "home"


def test_home_in_the_browser(browser_page):
    browser_page.goto("")
    browser_page.assert_no_exception()
    page = browser_page.page
    assert page.title() == "MiniLLM Lab"
    for question in ("What is a token, and why?", "How does a language model learn?"):
        assert page.get_by_role("heading", name=question).is_visible()
    assert page.get_by_text("One-minute classroom quick start").is_visible()
    assert page.get_by_text("Runs offline").is_visible()  # the shared sidebar footer


def test_every_page_in_the_navigation_renders_without_exception(browser_page):
    browser_page.goto("")
    page = browser_page.page
    hrefs = page.eval_on_selector_all(NAV_LINKS, "links => links.map(link => link.href)")

    # Streamlit hides the navigation while there is only one page; from two pages on,
    # every registered lab (one file in pages/ each) must have its link.
    page_files = len(list((ROOT / "pages").glob("*.py")))
    expected_links = page_files if page_files > 1 else 0
    problems = []
    if len(hrefs) != expected_links:
        problems.append(
            f"pages/ holds {page_files} page files but the sidebar links {len(hrefs)}: "
            f"register every page in app.py. Links: {hrefs}"
        )

    urls = list(dict.fromkeys([f"{browser_page.base_url}/", *hrefs]))
    for url in urls:
        page.goto(url)
        browser_page.wait_until_idle()
        name = screenshot_name(url)
        if "Page not found" in page.inner_text("body"):
            problems.append(f"{url}: Streamlit says 'Page not found'")
        if page.locator("[data-testid='stMain'] [data-testid='stElementContainer']").count() == 0:
            problems.append(f"{url}: the page rendered nothing")
        try:
            browser_page.assert_no_exception()
        except AssertionError as error:
            problems.append(str(error))
        shot = browser_page.screenshot(name)
        print(f"{url} -> {shot}")
    assert not problems, "\n".join(problems)
    assert not browser_page.page_errors, "\n".join(browser_page.page_errors)
    # School networks block things: nothing may be fetched from outside the app's server.
    assert not browser_page.external_requests, "\n".join(browser_page.external_requests)
