"""pytest itself runs the docstring examples of minillm/ and ui/ (pytest.ini), no hand-made list."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_pytest_collects_the_docstring_examples_of_the_engine_and_ui():
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "minillm", "ui"],
        cwd=ROOT, capture_output=True, text=True, timeout=600).stdout
    items = [line for line in listed.splitlines() if "::" in line]
    # a module of each kind: the engine, a chart builder, the page glue with Streamlit in it
    for module in ("minillm/compare.py::minillm.compare", "minillm/charts/attention.py::",
                   "ui/chips.py::ui.chips", "ui/links.py::ui.links"):
        assert any(item.startswith(module) for item in items), f"no doctest of {module} collected"
    hand_made = [path.name for path in (ROOT / "tests").glob("test_*.py")
                 if path.name != Path(__file__).name and "doctest.testmod(" in path.read_text()]
    assert not hand_made, f"hand-made doctest collectors (pytest runs them already): {hand_made}"
