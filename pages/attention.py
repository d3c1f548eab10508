"""Attention: when the model predicts the next word, which earlier words does it look at?

Layout and widgets only. The numbers come from `minillm.inspect`, the figures from
`minillm.charts.attention`. A chart is built once per layout (the same tokens on the axes) and
new numbers are swapped into it (`minillm.charts.specs.with_data`), so moving the epoch slider
costs no chart building.
"""

from functools import partial

import streamlit as st

from minillm import inspect, notebook
from minillm.charts.attention import (attention_heatmap, embedding_scatter, readable_labels,
                                     variance_sentence)
from minillm.charts.specs import with_data
from ui.charts import draw
from ui import linked
from ui.links import check_unknown_settings, share_caption
from ui.need_model import trained_model
from ui.notebook_button import notebook_button
from ui.plain_text import plain
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py

TYPED = "Type a context"
FROM_DATA = "A window from the dataset"
MAX_WINDOWS = 500  # a big corpus has tens of thousands: type a context for any other
MAX_MAP_TOKENS = 150  # the embedding map labels at most this many tokens (the most frequent)
DEFAULT_TEXT = "the cat sat on the"
# The settings a shared link carries, each declared once (ui.linked).
SOURCE = linked.Choice("attention_source", "context source", FROM_DATA, [FROM_DATA, TYPED])
TEXT = linked.Text("attention_text", "context", DEFAULT_TEXT, max_chars=inspect.MAX_PROMPT_CHARS)
EPOCH = linked.Choice("attention_epoch", "epoch", 0)  # its options: the epochs a run kept
LAYER = linked.Choice("attention_layer", "layer", 1)  # its options: the model's layers
LINK_KEYS = linked.keys("attention_")


@st.cache_data(max_entries=300, show_spinner=False)
def heatmap_template(labels: tuple, title: str, subtitle: str, _rows) -> dict:
    """One map's Vega-Lite spec for these tokens; other weights are swapped in (with_data)."""
    return attention_heatmap(_rows, title, subtitle).to_dict()


@st.cache_data(max_entries=20, show_spinner=False)
def embedding_template(kinds: tuple, _points) -> dict:
    return embedding_scatter(_points).to_dict()


def heatmaps(labels, weights, causal) -> list[dict]:
    """A spec for each head, then their average."""
    table = inspect.attention_table(labels, weights, causal)
    specs = []
    for _, rows in table.groupby("map_order", sort=True):
        title = rows["map"].iloc[0]
        subtitle = "= the notebook's attn_weights" if title == inspect.AVERAGE else ""
        specs.append(with_data(heatmap_template(tuple(labels), title, subtitle, rows), rows))
    return specs


st.title("Attention")
st.header("When the model predicts the next word, which earlier words does it look at?")
st.markdown(
    "Inside the model, every position of the window asks the others for information. "
    "**Attention** is how much it takes from each: a share between 0 and 1, and the shares of a "
    "position add up to 1. The model's guess for the next word is read at the **last "
    "position**, so the bottom row of each map (outlined in orange) is the one that makes the guess."
)

experiment = trained_model("attention_train_now")
dataset = experiment.dataset
causal = experiment.model.config.causal

check_unknown_settings("attention_", LINK_KEYS)
share_caption("The model is not in the link: whoever opens it sees the model of their own session.")

st.subheader("1. Pick a context")
source = SOURCE.segmented_control("Where the context comes from", required=True)
if source == TYPED:
    TEXT.text_input("Context", help=f"The model reads the last {dataset.block_size} tokens.")
    typed = inspect.clean_prompt(st.session_state.attention_text)
    for note in typed.notes:
        st.warning(note, icon=":material/content_cut:")
    context, unknown = inspect.typed_context(dataset, typed.text) if not typed.problem else ([], [])
    if unknown:
        st.warning(plain(inspect.describe_unknown(unknown, getattr(dataset.tokenizer, "unit", "token"))),
                   icon=":material/help:")
    if len(context) > dataset.block_size:
        st.caption(f"The model reads only the last {dataset.block_size} tokens (its block size); "
                   "the earlier ones are cut off.")
else:
    choices = inspect.window_choices(dataset, MAX_WINDOWS)
    if st.session_state.get("attention_window", 0) not in range(len(choices)):
        del st.session_state["attention_window"]  # a new model: its dataset has other windows
    shown = f"the first {MAX_WINDOWS:,} different ones" if len(choices) == MAX_WINDOWS else \
        f"{len(choices):,} different ones"
    pick = st.selectbox(f"A context window from the dataset ({shown}) → the next token(s) that "
                        "follow it there", range(len(choices)),
                        index=inspect.notebook_choice(choices), key="attention_window",
                        format_func=lambda n: choices[n].label)
    context = list(choices[pick].context)

replay = inspect.replay(experiment)  # one read: the run may still be training meanwhile
epochs = list(replay.epochs)
if st.session_state.get("attention_epoch", epochs[-1]) not in epochs:
    del st.session_state["attention_epoch"]
epoch = EPOCH.select_slider("Replay training: the weights after this many epochs",
                            options=epochs, default=epochs[-1],
                            help="Weights are kept at a few points while training. Epoch 0 is the "
                              "untrained model: its attention is close to even.")
model = replay.model(epoch)
layers = list(range(1, experiment.model.config.n_layers + 1))
if st.session_state.get("attention_layer", 1) not in layers:
    del st.session_state["attention_layer"]  # a new model with fewer layers
layer = 1  # the notebook's one layer: no picker
if len(layers) > 1:
    layer = LAYER.segmented_control("Layer (each has its own heads)", options=layers,
                                    required=True)

st.subheader("2. Where each position looks")
if not context:
    st.info(typed.problem or "None of these words is in the model's vocabulary, so the window "
            "would be all PAD. Type words from the corpus, like “the cat sat on the”.",
            icon=":material/edit:")
else:
    labels, weights = inspect.attention_maps(model, dataset, context, layer - 1)
    n_heads = weights.shape[0]
    if len(layers) > 1:
        st.markdown(f"**Layer {layer} of {len(layers)}.** "
                    + ("It reads the tokens themselves (and their positions)." if layer == 1 else
                       "Its positions hold what the layers below gathered, not the tokens alone: "
                       "each row is labelled by the token the position started as."))
    st.markdown(
        f"One map per head (**head 1** … **head {n_heads}**: each head asks its own question), "
        "then **their average**. The notebook's `attn_weights` was that average: PyTorch "
        "averages the heads unless told not to, although the notebook's comment calls it the "
        "first head. Rows: the position asking. Columns: the position it looks at. Hover a cell "
        "for its exact weight."
    )
    *heads, average = heatmaps(labels, weights, causal)
    per_row = 2 if len(heads) <= 4 else 3
    for row_start in range(0, len(heads), per_row):
        for column, spec in zip(st.columns(per_row), heads[row_start:row_start + per_row]):
            draw(spec, column)
    average_col, note_col = st.columns(2, vertical_alignment="center")
    draw(average, average_col)
    with note_col:
        st.markdown(f"**The average** of the {len(heads)} heads: each cell is the mean of that cell "
                    "in the maps above. This is the one the notebook printed.")
        if causal:
            st.markdown("**Causal mask on:** a position may only look at itself and earlier "
                        "ones. The grey cells marked *hidden* are later positions: their weight "
                        "is exactly 0.")
        elif experiment.model.config.loss_on == "every":
            st.warning("**Causal mask off, loss on every position:** each position can look at "
                       "the next token, the very answer it is asked for. Look right of the "
                       "diagonal: the model learned to copy it. That is cheating; it cannot do "
                       "that when it writes.", icon=":material/visibility:")
        else:
            st.markdown("**Causal mask off** (the notebook): every position may look at every "
                        "other, even later ones. That is harmless here: only the last position's "
                        "guess is scored, and nothing comes after it.")

st.subheader("3. Which tokens does the model put together?")
st.markdown(
    "Each token is stored as a list of numbers (its **embedding**, "
    f"{experiment.model.config.d_model} of them). This map squeezes those lists down to 2 "
    "directions (PCA). Tokens close together are ones the model treats alike: words that fill "
    "the same slot in a sentence drift together while it trains."
)
points = inspect.embedding_map(model, dataset, inspect.map_ids(dataset, MAX_MAP_TOKENS))
first, second = points.attrs["explained"]
names = dict(zip(points["id"], points["token"]))
if any(i not in names for i in st.session_state.get("attention_map_tokens", [])):
    del st.session_state["attention_map_tokens"]  # a new model: other tokens on its map
picked = st.multiselect("Tokens to name on the map", list(names), format_func=names.get,
                        key="attention_map_tokens", placeholder="the most frequent that can be read",
                        help="None picked: the most frequent tokens whose names do not cover one "
                             "another. Every dot names its token on hover.")
frequent_first = [*inspect.map_ids(dataset, 10), *inspect.map_ids(dataset, 40), *names]
points = points.assign(labelled=points["id"].isin(picked or readable_labels(points, frequent_first)))
kinds = tuple(sorted(points["kind"].unique()))
draw(with_data(embedding_template(kinds, points), points))
shown = f"the {MAX_MAP_TOKENS} most frequent tokens, " if dataset.vocab_size > MAX_MAP_TOKENS else ""
st.caption(f"Weights after epoch {epoch}; {shown}{int(points['labelled'].sum())} of them named. "
           + variance_sentence((first, second), len(points))
           + " The axes are recomputed for each epoch, so compare groups, not positions.")

notebook_button("attention", partial(  # the model retrained (same settings), then this context
    notebook.attention_notebook, experiment.settings, bpe=experiment.bpe,
    trained_epochs=replay.live_epoch, epoch=epoch, layer=layer - 1, context=context,
    typed=typed.text if source == TYPED else None,
    figures={"epoch": epoch, "explained": [first, second],
             **({"labels": labels, "weights": weights.tolist()} if context else {})}))
