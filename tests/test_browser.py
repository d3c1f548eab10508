"""The real app in a real browser, as a teacher on a projector and a student on a phone see it.

Every page of `ui.pages_list` at 390x844 and at 1280x800, as one student (Train is trained
first, on the phone, so Generate and Attention have a model): no "Page not found", no exception, a
screenshot (``$MINILLM_ARTIFACTS/screenshots/<page>-desktop.png`` / ``-phone.png``), and every
chart with a drawn mark in its plot area at a readable size. Presentation mode
(``?present=true``) is shot on Train, Compare and Attention. The browser's console must stay
free of errors, except Streamlit's own listed in `STREAMLIT_OWN_ERRORS`, each with its reason.
"""

from __future__ import annotations

import re

import pytest

from conftest import SCRIPT_RUN_TIMEOUT, SETTLE_MS, AppPage, artifacts_dir
from ui import presentation
from ui.pages_list import HOME_ALIAS, PAGES

pytestmark = pytest.mark.browser

NAV_LINKS = "[data-testid='stSidebarNav'] a"
CHART = "[data-testid='stVegaLiteChart']"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PRESENTED = ("train", "compare", "attention")
TRAINING_TIMEOUT_MS = 120_000
CHART_DRAW_TIMEOUT_MS = 15_000

# Console errors that come from Streamlit itself and cannot be fixed in this app, each with why.
STREAMLIT_OWN_ERRORS = [
    # Opened by its own address (/train), Streamlit's frontend does not know where the server's
    # root is, so it asks both /train/_stcore/... and /_stcore/... and uses the one that answers;
    # the first is a 404 the browser logs. Only a host page that sets window.__streamlit could
    # say it; the page served is Streamlit's index.html. streamlit/streamlit#7074.
    (re.compile(r"^/[\w-]+/_stcore/(health|host-config) .*status of 404"),
     "streamlit#7074: a page's own address probed as the server's root"),
]

# Marks drawn in the plot area, as Vega's SVG renderer writes them (axes, legends and titles
# are groups of their own, left out).
DRAWN_MARKS_JS = """
(chart) => {
  const svg = chart.querySelector('svg');
  const canvas = chart.querySelector('canvas');
  const box = chart.getBoundingClientRect();
  if (!svg && canvas) {  // canvas: coloured pixels (axes and labels are grey or black)
    const ctx = canvas.getContext('2d');
    const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let coloured = 0;
    for (let i = 0; i < data.length; i += 16) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
    }
    return {kind: 'canvas', width: box.width, height: box.height, items: coloured,
            markWidth: coloured ? canvas.getBoundingClientRect().width : 0, fonts: []};
  }
  if (!svg) return null;
  const outside = 'g.role-axis, g.role-legend, g.role-title, g.role-axis-label';
  let items = 0, left = Infinity, right = -Infinity, top = Infinity, bottom = -Infinity;
  for (const group of svg.querySelectorAll('g.role-mark')) {
    if (group.closest(outside)) continue;
    for (const item of group.querySelectorAll('path, rect, line, circle, text')) {
      const r = item.getBoundingClientRect();
      if (r.width <= 0 && r.height <= 0) continue;
      if (item.tagName === 'text' && !item.textContent.trim()) continue;
      items++;
      left = Math.min(left, r.left); right = Math.max(right, r.right);
      top = Math.min(top, r.top); bottom = Math.max(bottom, r.bottom);
    }
  }
  const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim());
  const fonts = texts.map(t => parseFloat(getComputedStyle(t).fontSize));
  // Text running past the chart's edges (or the screen's) is cut off; a glyph box's margin
  // a few px over the edge is not, so a third of the text's width or height must be outside.
  const edge = Math.min(box.right, window.innerWidth);
  const cut = texts.filter(t => {
    const r = t.getBoundingClientRect();
    const across = Math.max(0, box.left - r.left) + Math.max(0, r.right - edge);
    const down = Math.max(0, box.top - r.top) + Math.max(0, r.bottom - box.bottom);
    return across > r.width / 3 || down > r.height / 3;
  }).map(t => t.textContent.trim());
  return {kind: 'svg', width: box.width, height: box.height, items,
          markWidth: items ? right - left : 0, markHeight: items ? bottom - top : 0, fonts, cut,
          offscreen: box.right > window.innerWidth + 1 || box.left < -1};
}
"""

# Text that the page cuts short with "…" (a narrow column, larger text): what a reader misses.
CLIPPED_TEXT_JS = """
() => [...document.querySelectorAll("[data-testid='stMain'] *, [data-testid='stSidebar'] *")]
  .filter(el => getComputedStyle(el).textOverflow === 'ellipsis'
    && el.scrollWidth > el.clientWidth + 1 && el.getBoundingClientRect().width > 0
    && (el.innerText || '').trim())
  .map(el => el.innerText.trim().slice(0, 80))
"""

# Every control a user can see (in the page and the sidebar), each marked with its number.
MARK_CONTROLS_JS = """
() => {
  const kinds = ["button", "input", "textarea", "select", "summary", "a[href]", "[role=slider]",
    "[role=tab]", "[role=switch]", "[role=checkbox]", "[role=radio]", "[role=combobox]"];
  const within = ["[data-testid='stMain']", "[data-testid='stSidebar']"];
  const all = within.flatMap(area => kinds.map(kind => `${area} ${kind}`)).join(", ");
  const controls = [...new Set(document.querySelectorAll(all))].filter(el => {
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && !el.disabled
      && el.getAttribute("aria-disabled") !== "true" && el.getAttribute("aria-hidden") !== "true";
  });
  controls.forEach((el, n) => el.setAttribute("data-keyboard-check", n));
  return controls.map(el => `${el.tagName.toLowerCase()} `
    + `'${(el.getAttribute("aria-label") || el.innerText || el.value || "").trim().slice(0, 50)}'`);
}
"""

# The marked controls that the focused element is, holds or sits in; and the focused element.
FOCUSED_JS = """
() => {
  const el = document.activeElement;
  const hit = [...document.querySelectorAll("[data-keyboard-check]")]
    .filter(m => m === el || m.contains(el) || el.contains(m) && el !== document.body)
    .map(m => Number(m.getAttribute("data-keyboard-check")));
  return {hit, tag: el.tagName, role: el.getAttribute("role"),
          text: (el.getAttribute("aria-label") || el.innerText || "").trim().slice(0, 60)};
}
"""

# Parts of the page that scroll sideways (a table or a row of tabs wider than the screen). A
# data grid (st.dataframe) of many columns is left out: it is made to be swiped across, and
# its header row stays in view; a summary that answers the lesson is a plain table that fits.
SIDEWAYS_JS = """
() => [...document.querySelectorAll("[data-testid='stMain'] *")].filter(el => {
    const style = getComputedStyle(el);
    return ["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1
      && el.getBoundingClientRect().width > 0 && !el.closest("[data-testid^='stDataFrame']");
  }).map(el => `${(el.closest("[data-testid]") || el).getAttribute("data-testid")} `
    + `(${el.scrollWidth} px in ${el.clientWidth}): ${(el.innerText || "").trim().slice(0, 50)}`)
"""


def page_name(url_path: str) -> str:
    return url_path or "home"


class Walk:
    """One browser context (one student) at one size, and every console error it saw."""

    def __init__(self, browser, base_url: str, size: str):
        self.size = size
        self.context = browser.new_context(viewport=VIEWPORTS[size])
        page = self.context.new_page()
        self.app = AppPage(page=page, base_url=base_url)
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.app.page_errors.append(f"{page.url}: {error}"))
        page.on("request", lambda request: request.url.startswith(
            ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:"))
            or self.app.external_requests.append(f"{page.url}: {request.url}"))

    def _console(self, message) -> None:
        if message.type != "error":
            return
        source = (message.location or {}).get("url", "")
        path = re.sub(r"^https?://[^/]+", "", source)
        self.errors.append(f"{path} {message.text} (on {self.app.page.url})")

    @property
    def page(self):
        return self.app.page

    def open(self, url_path: str) -> None:
        """Open an address and wait until the page has drawn (not just connected)."""
        self.page.goto(f"{self.app.base_url}/{url_path}")
        try:
            self.page.locator("[data-testid='stMain'] h1").first.wait_for(timeout=SCRIPT_RUN_TIMEOUT)
        except Exception:  # leave what the browser showed for a human to look at
            self.app.screenshot(f"timeout-{self.size}")
            raise
        self.app.wait_until_idle()
        self.settle_charts()

    def settle_charts(self) -> None:
        """Wait until the number of charts stops changing and each one has been drawn."""
        count = -1
        while count != self.page.locator(CHART).count():
            count = self.page.locator(CHART).count()
            self.page.wait_for_timeout(SETTLE_MS)
        for chart in self.page.locator(CHART).all():
            chart.locator("svg, canvas").first.wait_for(state="attached",
                                                       timeout=CHART_DRAW_TIMEOUT_MS)
        self.page.wait_for_timeout(SETTLE_MS)

    def chart_problems(self, where: str, min_font: float) -> list[str]:
        problems = []
        for number, chart in enumerate(self.page.locator(CHART).all(), start=1):
            if not chart.is_visible():  # the other size's form of a chart (draw_wide_or_narrow)
                continue
            chart.scroll_into_view_if_needed()
            drawn = chart.evaluate(DRAWN_MARKS_JS)
            name = f"{where}: chart {number}"
            if drawn is None:
                problems.append(f"{name} was never drawn")
                continue
            if drawn["items"] == 0:
                problems.append(f"{name}: its plot area is empty ({drawn})")
            elif drawn["markWidth"] < 0.2 * drawn["width"]:
                problems.append(f"{name}: its marks are squeezed into {drawn['markWidth']:.0f} of "
                                f"{drawn['width']:.0f} px (the plot area collapsed)")
            if drawn.get("offscreen"):
                problems.append(f"{name}: wider than the screen, it runs off the side")
            if drawn.get("cut"):
                problems.append(f"{name}: text cut off at its edges: {drawn['cut'][:5]}")
            small = sorted({size for size in drawn["fonts"] if size < min_font})
            if small:
                problems.append(f"{name}: text at {small} px, under {min_font} px")
        return problems

    def unreachable_by_tab(self, most: int = 400) -> list[str]:
        """The visible controls that Tab never focuses, going once round the whole page."""
        controls = self.page.evaluate(MARK_CONTROLS_JS)
        reached: set[int] = set()
        first = None
        for _ in range(most):
            self.page.keyboard.press("Tab")
            focused = self.page.evaluate(FOCUSED_JS)
            reached.update(focused["hit"])
            here = (focused["tag"], focused["text"])
            if first is None:
                first = here
            elif here == first:  # round once: Tab is back where it began
                break
        return [control for n, control in enumerate(controls) if n not in reached]

    def tab_to(self, what: str, most: int = 200) -> dict:
        """Press Tab until the focused element's text (or label) starts with `what`."""
        for _ in range(most):
            self.page.keyboard.press("Tab")
            focused = self.page.evaluate(FOCUSED_JS)
            if re.sub(r"^[a-z_]+\n+", "", focused["text"]).startswith(what):
                return focused  # (a Material icon's name comes before a button's text)
        raise AssertionError(f"Tab never reaches {what!r}")

    def focus(self, what: str) -> dict:
        """`tab_to(what)` unless `what` has the focus already (a rerun may have moved it)."""
        focused = self.page.evaluate(FOCUSED_JS)
        if re.sub(r"^[a-z_]+\n+", "", focused["text"]).startswith(what):
            return focused
        return self.tab_to(what)

    def sideways(self, where: str) -> list[str]:
        return [f"{where}: scrolls sideways: {part}" for part in self.page.evaluate(SIDEWAYS_JS)]

    def clipped_text(self, where: str) -> list[str]:
        return [f"{where}: text cut short with '...': {text!r}"
                for text in self.page.evaluate(CLIPPED_TEXT_JS)]

    def train(self) -> None:
        """Press Train on the Train page and wait for its done marker."""
        self.page.get_by_role("button", name=re.compile("Train")).first.click()
        done = self.page.locator("[data-testid='stAlertContentSuccess']", has_text="Training done:")
        done.wait_for(timeout=TRAINING_TIMEOUT_MS)
        self.app.wait_until_idle()
        self.settle_charts()

    def sidebar_width(self) -> float:
        return self.page.evaluate(
            "() => document.querySelector(\"[data-testid='stSidebar']\")"
            "?.getBoundingClientRect().width || 0")

    def unexpected_errors(self) -> list[str]:
        return [error for error in self.errors
                if not any(pattern.search(error) for pattern, _ in STREAMLIT_OWN_ERRORS)]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def walk(request, browser, streamlit_server):
    walks = []

    def start(size: str) -> Walk:
        walks.append(Walk(browser, streamlit_server, size))
        return walks[-1]

    yield start
    for one in walks:
        one.close()


def test_home_in_the_browser(browser_page):
    browser_page.goto("")
    browser_page.assert_no_exception()
    page = browser_page.page
    assert page.title() == "MiniLLM Lab"
    for question in ("What is a token, and why?", "How does a language model learn?"):
        assert page.get_by_role("heading", name=question).is_visible()
    assert page.get_by_text("One-minute classroom quick start").is_visible()
    assert page.get_by_text("Runs offline").is_visible()  # the shared sidebar footer
    for page_info in PAGES[1:]:  # Home lists every lab, each a link to its address
        link = page.locator("[data-testid='stMain']").get_by_role(
            "link", name=f"Open {page_info.title}")
        href = link.evaluate("a => a.href")  # resolved against the page's address
        assert href == f"{browser_page.base_url}/{page_info.url_path}", href


def test_home_has_its_own_address_too(browser_page):
    """/home (Home's url_path before it was the root) opens Home, not 'Page not found'."""
    browser_page.goto(HOME_ALIAS)
    page = browser_page.page
    page.get_by_role("heading", name="What is a token, and why?").wait_for(timeout=30_000)
    assert "Page not found" not in page.inner_text("body")
    assert page.url.rstrip("/") == browser_page.base_url  # sent to the root, Home's address


def test_a_first_visit_opens_the_sidebar_on_a_desktop_and_not_on_a_phone(walk):
    """On a phone the open sidebar would cover most of the page; on a desktop it is the map."""
    phone = walk("phone")
    phone.open("")
    assert phone.sidebar_width() < 0.2 * VIEWPORTS["phone"]["width"], phone.sidebar_width()
    desktop = walk("desktop")
    desktop.open("")
    assert desktop.sidebar_width() > 200, desktop.sidebar_width()
    hrefs = desktop.page.eval_on_selector_all(NAV_LINKS, "links => links.map(l => l.href)")
    assert [re.sub(r"^https?://[^/]+/?", "", href) for href in hrefs] == \
        [page.url_path for page in PAGES], "the sidebar is not ui.pages_list"


def test_every_page_draws_on_a_phone_and_on_a_projector(walk):
    """One student: every page at 390x844 (Train trained there, the phone loss chart being a
    regression case), then the same pages at 1280x800, then presentation mode: each drawn, its
    charts with marks at a readable size, no text cut short, nothing scrolling sideways (at
    390x844), every control reachable with Tab (at 1280x800), a screenshot, and no console error of the app's."""
    one = walk("phone")
    problems = []
    for size in ("phone", "desktop"):
        one.page.set_viewport_size(VIEWPORTS[size])
        for page_info in PAGES:  # in lesson order: Train comes before Generate and Attention
            where = f"{page_name(page_info.url_path)} ({size})"
            one.open(page_info.url_path)
            if page_info.url_path == "train" and size == "phone":
                one.train()  # the model then stays this browser's (its seat) for every page
            if "Page not found" in one.page.inner_text("body"):
                problems.append(f"{where}: Streamlit says 'Page not found'")
            try:
                one.app.assert_no_exception()
            except AssertionError as error:
                problems.append(f"{where}: {error}")
            if page_info.url_path in ("train", "generate", "attention") \
                    and not one.page.locator(CHART).count():
                problems.append(f"{where}: no chart after training")
            problems += one.chart_problems(where, presentation.NORMAL_MIN_PX)
            problems += one.clipped_text(where)
            if size == "phone":
                problems += one.sideways(where)
            if size == "desktop":  # every control a mouse could click, reachable with Tab
                problems += [f"{where}: Tab never reaches {control}"
                             for control in one.unreachable_by_tab()]
            one.app.screenshot(f"{page_name(page_info.url_path)}-{size}")
    for url_path in PRESENTED:
        one.open(f"{url_path}?present=true")
        toggle = one.page.locator("[data-testid='stSidebar'] [data-testid='stCheckbox'] input")
        if not toggle.first.is_checked():
            problems.append(f"{url_path}?present=true: the presentation toggle is off")
        problems += one.chart_problems(f"{url_path} (presentation mode)",
                                       presentation.PRESENT_MIN_PX)
        problems += one.clipped_text(f"{url_path} (presentation mode)")
        one.app.screenshot(f"{url_path}-present")
    assert not problems, "\n".join(problems)
    assert not one.app.page_errors, "\n".join(one.app.page_errors)
    # School networks block things: nothing may be fetched from outside the app's server.
    assert not one.app.external_requests, "\n".join(one.app.external_requests)
    unexpected = one.unexpected_errors()
    log = artifacts_dir() / "browser-console-errors-walk.log"
    log.write_text("\n".join(one.errors) + "\n")
    print(f"{len(one.errors) - len(unexpected)} console errors of Streamlit's own (listed), "
          f"{len(unexpected)} others; all in {log}")
    assert not unexpected, "console errors:\n" + "\n".join(unexpected)


def test_the_train_page_works_from_the_keyboard(walk):
    """A student who cannot use a mouse sets up and runs Train with keys alone: Enter opens the
    settings, an arrow key moves a slider (and the link follows), Enter trains; before and after
    training, Tab reaches every control a mouse could click. (The walk above checks Tab on
    every page.)"""
    one = walk("desktop")
    one.open("train")
    problems = [f"/train: Tab never reaches {control}" for control in one.unreachable_by_tab()]
    one.tab_to("Settings for the next run")
    one.page.keyboard.press("Enter")
    one.app.wait_until_idle()  # (a key pressed during a rerun can be lost on a busy machine)
    layers = one.tab_to("Layers")
    assert layers["tag"] == "INPUT", layers
    one.page.keyboard.press("ArrowRight")
    one.page.wait_for_url(re.compile(r"train_layers=2"), timeout=SCRIPT_RUN_TIMEOUT)
    one.app.wait_until_idle()
    one.focus("Layers")
    one.page.keyboard.press("ArrowLeft")  # back to the notebook's one layer
    one.page.wait_for_url(re.compile(r"/train$"), timeout=SCRIPT_RUN_TIMEOUT)
    one.app.wait_until_idle()
    problems += [f"/train, settings open: Tab never reaches {control}"
                 for control in one.unreachable_by_tab()]
    one.page.evaluate("() => document.activeElement.blur()")
    one.tab_to("Train")
    one.page.keyboard.press("Enter")
    one.page.locator("[data-testid='stAlertContentSuccess']", has_text="Training done:") \
        .wait_for(timeout=TRAINING_TIMEOUT_MS)
    one.app.wait_until_idle()
    one.settle_charts()
    assert "final training loss 0.3845" in one.page.inner_text("[data-testid='stMain']")
    problems += [f"/train after training: Tab never reaches {control}"
                 for control in one.unreachable_by_tab()]
    assert not problems, "\n".join(problems)
