"""Readable from the back row: chart text at least 14 px on every page, 20 px in presentation mode.

What a chart does not set, Streamlit's chart theme draws at about 12 px, so the spec a page
sends must itself say every text size (axes, legends, facet headers, titles, text marks).
"""

import json

import pytest

from conftest import app_test, run_app, trained_experiment
from ui import presentation

# What Streamlit would otherwise draw small: each must be set, at least the minimum.
REQUIRED = [("axis", "labelFontSize"), ("axis", "titleFontSize"), ("legend", "labelFontSize"),
            ("legend", "titleFontSize"), ("header", "labelFontSize"), ("text", "fontSize")]


def chart_specs(at) -> list[dict]:
    specs = []

    def walk(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", None) == "vega_lite_chart":
                specs.append(json.loads(child.proto.spec))
            walk(child)

    walk(at._tree)
    return specs


def font_sizes(node, path="") -> list[tuple[str, float]]:
    """Every numeric font size in a spec, with where it is (data rows are not walked)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("data", "datasets"):
                continue
            if (key == "fontSize" or key.endswith("FontSize")) and isinstance(value, (int, float)):
                found.append((f"{path}.{key}", value))
            else:
                found += font_sizes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += font_sizes(item, f"{path}[{i}]")
    return found


def too_small(spec: dict, minimum: int) -> list[str]:
    problems = [f"{where} = {size}" for where, size in font_sizes(spec) if size < minimum]
    config = spec.get("config", {})
    for part, key in REQUIRED:
        size = config.get(part, {}).get(key)
        if size is None or size < minimum:
            problems.append(f"config.{part}.{key} = {size} (Streamlit draws ~12 px without it)")
    return problems


@pytest.fixture(scope="module")
def experiment():
    return trained_experiment(epochs=30)


@pytest.mark.parametrize("page", ["pages/words_vs_tokens.py", "pages/compare.py",
                                  "pages/build_bpe.py"])
def test_token_pages_charts_are_readable(page):
    at = run_app(page)
    assert not at.exception, at.exception
    specs = chart_specs(at)
    assert specs, f"{page} drew no chart"
    for spec in specs:
        assert not too_small(spec, 14), too_small(spec, 14)


@pytest.mark.parametrize("page", ["pages/train.py", "pages/generate.py", "pages/attention.py"])
@pytest.mark.parametrize("present", [False, True])
def test_model_pages_charts_are_readable_and_larger_when_presenting(page, present, experiment):
    at = app_test(page)
    at.session_state["experiment"] = experiment
    at.session_state[presentation.PRESENT_KEY] = present  # as the shared sidebar's toggle sets it
    at.run()
    assert not at.exception, at.exception
    specs = chart_specs(at)
    assert specs, f"{page} drew no chart"
    minimum = presentation.min_font_px(present)
    for spec in specs:
        assert not too_small(spec, minimum), too_small(spec, minimum)


def test_the_toggle_is_in_the_shared_sidebar_and_bound_to_the_link():
    at = run_app()
    assert not at.exception
    toggle = at.sidebar.toggle(key=presentation.PRESENT_KEY)
    assert toggle.label == "Presentation mode" and toggle.value is False
    toggle.set_value(True).run()
    assert not at.exception
    assert at.session_state[presentation.PRESENT_KEY] is True


def test_styled_leaves_the_spec_and_its_data_alone():
    spec = {"data": {"values": [{"fontSize": 3}]}, "mark": {"type": "text", "fontSize": 8},
            "config": {"axis": {"labelColor": "red"}}}
    before = json.loads(json.dumps(spec))
    out = presentation.styled(spec, present=True)
    assert spec == before
    assert out["data"] == spec["data"]
    assert out["mark"]["fontSize"] == 20
    assert out["config"]["axis"] == {"labelFontSize": 20, "titleFontSize": 22, "labelColor": "red"}
