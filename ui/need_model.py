"""The session's trained model for Generate and Attention; without one, say so and offer to
train the notebook's."""

import time
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from minillm.experiment import TrainSettings
from ui import model_state
from ui.plain_text import plain

TRAIN_PAGE = Path(__file__).resolve().parents[1] / "pages" / "train.py"


def train_notebook_model() -> None:
    """The button's callback: runs before the page does, so the page already sees the model."""
    model_state.warm_up()
    with st.spinner("Training the notebook's model: 300 epochs on six sentences…"):
        experiment = model_state.start_experiment(TrainSettings())
        while not experiment.trainer.done:  # in chunks, within the server's training slots
            if not model_state.train_chunk(experiment, seconds=1.0, max_epochs=300):
                time.sleep(0.05)  # every slot busy: another student is training


def need_model(key: str) -> None:
    """No trained model in this session: say so, offer to train the notebook's one, stop."""
    st.info("There is no trained model in this session yet. Train one first: the notebook's "
            "settings take a few seconds.", icon=":material/school:")
    st.button("Train the notebook's model now (about 2 seconds)", type="primary", key=key,
              icon=":material/play_arrow:", on_click=train_notebook_model)
    if TRAIN_PAGE.exists():
        try:
            st.page_link("pages/train.py", label="Or choose your own settings on the Train page",
                         icon=":material/model_training:")
        except StreamlitPageNotFoundError:
            pass  # Train is not registered in app.py (yet)
    st.stop()


def trained_model(key: str):
    """The session's `Experiment`, named in a caption; without one, `need_model(key)` (stops)."""
    experiment = model_state.current_experiment()
    if experiment is None:
        need_model(key)
    trainer = experiment.trainer
    st.caption(f"Model: {plain(experiment.settings.label())} · trained {trainer.epoch} of "
               f"{trainer.epochs} epochs · {experiment.model.num_parameters():,} parameters")
    if not trainer.done:
        st.info(f"Training is paused at epoch {trainer.epoch} of {trainer.epochs}: it trains only "
                "while the Train page is open, and goes on by itself when you go back there. "
                "This page uses the model as it is now, half-trained.",
                icon=":material/pause_circle:")
    return experiment
