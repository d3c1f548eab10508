"""Download the trained model, or upload a saved one to go on with it (Train page)."""

import re

import streamlit as st

from minillm.checkpoint import MAX_CHECKPOINT_BYTES, CheckpointError, load_checkpoint, save_checkpoint
from ui import model_state
from ui.plain_text import plain


def _file_name(exp) -> str:
    corpus = re.sub(r"[^a-z0-9]+", "-", exp.settings.corpus_name.lower()).strip("-")[:40]
    return f"minillm-{corpus or 'model'}-{exp.trainer.epoch}-epochs.pt"


def _load_upload() -> None:
    upload = st.session_state.get("model_upload")
    if upload is None:
        return
    name = plain(upload.name, max_chars=80)  # the student's own file name, shown as typed
    try:  # the server's budgets: a model whose run it could not afford is refused
        model_state.adopt(load_checkpoint(upload.getvalue(), budgets=model_state.budgets()))
        st.session_state.model_upload_message = ("success", f"Loaded {name}: this is now your model.")
    except CheckpointError as error:
        st.session_state.model_upload_message = ("error", f"{name}: {error} Your current model is unchanged.")


def save_load_section() -> None:
    exp = model_state.current_experiment()
    with st.expander("Save your model, or load a saved one"):
        if exp is not None and exp.trainer.history:
            st.download_button(
                "Download this model", data=lambda: save_checkpoint(exp), file_name=_file_name(exp),
                mime="application/octet-stream", icon=":material/download:", key="model_download",
                help="Weights, settings, vocabulary and loss history in one file (a few hundred kB).",
            )
        else:
            st.caption("Train a model first to download it.")
        st.file_uploader(
            f"Load a saved MiniLLM model (.pt, at most {MAX_CHECKPOINT_BYTES // 1_000_000} MB)",
            type=["pt"], key="model_upload", on_change=_load_upload,
            help="Only plain data is read from the file (weights_only): a file that holds code is refused.",
        )
        kind, text = st.session_state.pop("model_upload_message", (None, None))
        if kind == "success":
            st.success(text, icon=":material/upload:")
        elif kind == "error":
            st.error(text, icon=":material/error:")
