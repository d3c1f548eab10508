"""A student's own text for a model page: pasted, or uploaded as a .txt file.

Train and Which tokens? both offer it, each under its own keys (``train_text``/``train_file``,
``tok_text``/``tok_file``); the text is read by `minillm.corpus` (limits, cleaning, notes).
"""

from __future__ import annotations

import streamlit as st

from minillm.corpus import Corpus, CorpusError, load_corpus, load_upload

PASTE, UPLOAD = "Paste your own sentences", "Upload a text file (.txt)"


def own_text(choice: str, prefix: str, example: list[str] | tuple[str, ...]) -> Corpus:
    """The pasted (`choice` is PASTE, the box starting with `example`) or uploaded text, its
    notes shown under it. Raises `CorpusError` with a sentence for the student."""
    if choice == PASTE:
        text = st.text_area("Your sentences, one per line", "\n".join(example), height=150,
                            key=f"{prefix}_text", persist_state="session")
        corpus = load_corpus(text, "your sentences")
    else:
        upload = st.file_uploader("A plain-text file, one sentence per line", type=["txt"],
                                  key=f"{prefix}_file")
        if upload is None:
            raise CorpusError("Upload a .txt file (UTF-8), one sentence per line.")
        corpus = load_upload(upload.getvalue(), upload.name)
    for note in corpus.notes:
        st.caption(note)
    return corpus
