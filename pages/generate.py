"""Generate: what does the trained model write, and is it creating or just remembering?

Layout and widgets only. Sampling is `minillm.sample.generate`; the copied runs, candidate
tables and prompt checks come from `minillm.inspect`; the figures from
`minillm.charts.generate`; the batch of samples judged sentence by sentence from
`ui.originality`. The model is the session's `st.session_state["experiment"]`.
"""

from functools import partial

import streamlit as st

from minillm import display, inspect, notebook
from minillm.charts.generate import candidate_bars, marked_text_html
from minillm.charts.specs import with_data
from minillm.sample import generate
from ui.charts import draw_wide_or_narrow
from ui.chips import render_legend
from ui import linked
from ui.links import check_unknown_settings, share_caption
from ui.need_model import trained_model
from ui.notebook_button import notebook_button
from ui.originality import show_originality
from ui.plain_text import plain
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py

TOP_K_CHOICES = ["off", 1, 2, 3, 5, 10, 20]
# The settings a shared link carries, each declared once (ui.linked).
PROMPT = linked.Text("generate_prompt", "prompt", "the cat", max_chars=inspect.MAX_PROMPT_CHARS)
TEMPERATURE = linked.Number("generate_temperature", "temperature", 1.0, 0.1, 3.0, step=0.1)
TOP_K = linked.Choice("generate_top_k", "top-k", "off", TOP_K_CHOICES)
MAX_NEW = linked.Number("generate_max_new", "max new tokens", 15, 1, 50)
GREEDY = linked.Flag("generate_greedy", "greedy", False)
SEED = linked.Number("generate_seed", "seed", 42, 0, 999_999)
LINK_KEYS = linked.keys("generate_")


@st.cache_data(max_entries=20, show_spinner=False)
def bars_template(rows_per_step: int, columns: int, _candidates) -> dict:
    """The candidate bars' Vega-Lite spec; another generation's rows are swapped in."""
    return candidate_bars(_candidates, columns=columns).to_dict()


def pick_prompt():  # a quick pick fills the prompt box; typing unselects it
    if st.session_state.generate_pick is not None:
        st.session_state.generate_prompt = st.session_state.generate_pick


def next_sample():
    st.session_state.generate_seed = (st.session_state.generate_seed + 1) % 1_000_000


st.title("Generate")
st.header("What does the model write, and is it creating or just remembering?")
st.markdown(
    "Give the model a few words. It guesses the next word, adds it, and guesses again, one "
    "word at a time. Then we check each run of words against the corpus: did it **copy** a "
    "sentence it learned, or **combine** pieces into something new?"
)

experiment = trained_model("generate_train_now")
dataset = experiment.dataset
unit = getattr(dataset.tokenizer, "unit", "token")
suggestions = inspect.prompt_suggestions(dataset)
default_prompt = "the cat" if "the cat" in suggestions else suggestions[0]
check_unknown_settings("generate_", LINK_KEYS)
share_caption("The model is not in the link: whoever opens it uses the model of their own session.")

st.pills("Try a prompt (the notebook's)" if suggestions[0] == "the cat" else "Try a prompt",
         suggestions, key="generate_pick", on_change=pick_prompt,
         format_func=plain)  # a pill's label is Markdown; these are the corpus's own words
PROMPT.text_input("Prompt", default=default_prompt,
                  on_change=lambda: st.session_state.update(generate_pick=None),
                  help=f"Up to {inspect.MAX_PROMPT_CHARS} characters. The model only knows the {unit}s "
                   "of its corpus; others are left out, and we say which.")
if getattr(dataset.tokenizer, "rule", None):  # the word tokenizer's, the notebook's
    st.caption(f"Words, as this model reads them: {dataset.tokenizer.rule}. (Compare tokenizers' "
               "word list lowercases instead.)")

temp_col, topk_col, length_col = st.columns(3, gap="medium")
greedy = st.session_state.get("generate_greedy", False)
temperature = TEMPERATURE.slider("Temperature", container=temp_col, disabled=greedy,
                                 help="Below 1: bolder favourites. Above 1: flatter, wilder.")
top_k = TOP_K.select_slider("Top-k", container=topk_col, disabled=greedy,
                            help="Draw only from the k most likely words (off: from all of them).")
max_new = MAX_NEW.slider(f"Max new {unit}s", container=length_col, name=f"max new {unit}s",
                         help="The notebook wrote up to 15.")
GREEDY.check()  # both read before their row is drawn, as the page always did
SEED.check()
greedy_col, seed_col, again_col = st.columns(3, gap="medium", vertical_alignment="bottom")
greedy = GREEDY.toggle("Greedy", container=greedy_col, checked=True,
                       help="Always write the most likely next word: the same text every time.")
SEED.number_input("Seed", container=seed_col, checked=True, step=1, disabled=greedy,
                  help="Same seed, same settings: the same text.")
again_col.button("Another sample", on_click=next_sample, disabled=greedy, icon=":material/casino:")

prompt = inspect.clean_prompt(st.session_state.generate_prompt)
if len(st.session_state.generate_prompt or "") >= inspect.MAX_PROMPT_CHARS:  # the box cuts a paste
    st.warning(f"A prompt can be at most {inspect.MAX_PROMPT_CHARS} characters: longer text is cut "
               f"there. The model reads only the last {dataset.block_size} {unit}s anyway.",
               icon=":material/content_cut:")
for note in prompt.notes:
    st.warning(note, icon=":material/content_cut:")
if prompt.problem:
    st.info(prompt.problem, icon=":material/edit:")
    st.stop()

generation = generate(experiment.model, dataset, prompt.text, max_new_tokens=max_new,
                      temperature=temperature, top_k=None if top_k == "off" else top_k,
                      greedy=greedy, seed=int(st.session_state.generate_seed))
if generation.unknown:
    message = inspect.describe_unknown(generation.unknown, unit, tokenizer=dataset.tokenizer)
    if not inspect.typed_context(dataset, prompt.text)[0]:
        message += (" Nothing of the prompt is left, so the model started from an empty window "
                    "(all PAD), as at the start of a sentence.")
    st.warning(plain(message), icon=":material/help:")

st.subheader("What the model wrote")
segments = inspect.marked_generation(generation, dataset)
st.html(marked_text_html(segments, unit=unit, min_len=inspect.MIN_COPIED))
copied, written = inspect.copied_count(generation, dataset)

if generation.stopped == "eos":
    st.success(f"The model wrote **EOS** (end of sentence) after {written} {unit}(s): it ended "
               "the text by itself. It learned where sentences end.", icon=":material/stop_circle:")
elif generation.stopped == "pad":
    st.info(f"The model picked **PAD** after {written} {unit}(s), so it stopped, as the notebook "
            "does.", icon=":material/stop_circle:")
elif dataset.eos:
    st.info(f"It stopped at the limit of {max_new} new {unit}s before writing EOS.",
            icon=":material/straighten:")
else:
    st.info(f"It stopped only because of the limit of {max_new} new {unit}s. This model has no "
            "end-of-sentence token (EOS), so it never learned where a sentence ends: it rambles "
            "until the limit. Train with **EOS on** and it stops by itself.",
            icon=":material/straighten:")

if written and copied == written:
    st.markdown(f"**All {written} {unit}s it wrote** are copied word for word from the corpus: "
                "here the model is *remembering*, not creating.")
elif written:
    st.markdown(
        f"**{copied} of the {written} {unit}s it wrote** sit in runs copied word for word from "
        "the corpus. Where one highlighted run stops and the next begins, or where the text is "
        "plain, the model glued remembered pieces together: those seams are the only *new* thing "
        "a model this small writes."
    )

show_originality(experiment, prompt.text, temperature, None if top_k == "off" else top_k, greedy,
                 int(st.session_state.generate_seed))

st.subheader("What it weighed at each step")
st.caption("For each new word: the most likely candidates and the probability the model gave "
           "each (after temperature and top-k). Orange is the one it wrote. Several long bars: the "
           "corpus had several ways to continue, and the model drew one at random.")
table = inspect.candidates_table(generation, dataset)
if unit != "word":  # characters and pieces: what ␣, ↵ and ⟨F0 9F⟩ on the bars mean
    render_legend(display.legend_lines(table["label"]))
per_step = int(table.groupby("step").size().max())
draw_wide_or_narrow(*(with_data(bars_template(per_step, columns, table), table)  # 3 a row; a phone 1
                      for columns in (3, 1)), key="candidates")

notebook_button("generate", partial(  # the model retrained (same settings), then this generation
    notebook.generate_notebook, experiment.settings, bpe=experiment.bpe,
    trained_epochs=experiment.trainer.epoch, prompt=prompt.text, max_new_tokens=max_new,
    temperature=temperature, top_k=None if top_k == "off" else top_k, greedy=greedy,
    sample_seed=int(st.session_state.generate_seed),
    figures={"text": generation.text, "ids": [step.token_id for step in generation.steps],
             "stopped": generation.stopped, "copied": copied, "written": written}))
