"""The "Open as a notebook" button every lab page ends with.

    notebook_button("train", partial(notebook.train_notebook, settings, figures=summary))

`build` makes the page's notebook (`minillm.notebook`, a `nbformat.NotebookNode`). It runs
only when the student clicks, on a thread of Streamlit's own (deferred download data), so it
must hold plain values taken when the page ran, never read session state: bind them with
`functools.partial`. Without `build` (nothing to export yet) the button is shown disabled.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st

from minillm import notebook

HELP = ("Download this experiment as a Jupyter notebook that reproduces it with minillm, with "
        "these settings and the numbers shown here to check against.")


def notebook_button(page: str, build: Callable[[], object] | None,
                    disabled_help: str = "Nothing to export yet.") -> None:
    """A download button for the notebook `build()` makes, named after `page`."""
    st.download_button(
        "Open as a notebook",
        data=(lambda: notebook.to_bytes(build())) if build is not None else b"",
        file_name=notebook.notebook_file_name(page),
        mime=notebook.MIME,
        icon=":material/download:",
        key=f"notebook_{page}",
        help=HELP if build is not None else disabled_help,
        disabled=build is None,
        on_click="ignore",  # a download needs no rerun of the page
    )
