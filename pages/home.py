"""Home: the lesson's two questions, the path through the labs, a one-minute quick start.

Written to be read from the back of a classroom: big headers, short sentences.
A lab is linked only once its page exists and app.py registers it; until then
its name is shown as plain text, so Home never breaks while labs are being built.
"""

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py

PAGES_DIR = Path(__file__).parent

# The path through the labs, in lesson order: (page file, title, icon, the question it answers).
LABS = [
    ("words_vs_tokens.py", "Words vs tokens", ":material/text_fields:",
     "Why are whole words a bad way to cut up text?"),
    ("compare.py", "Compare tokenizers", ":material/compare_arrows:",
     "How do different tokenizers cut up the same sentence?"),
    ("build_bpe.py", "Build a BPE", ":material/construction:",
     "How does a tokenizer learn its pieces from text?"),
    ("train.py", "Train", ":material/model_training:",
     "How does a model learn to guess the next word, and when does it stop improving?"),
    ("generate.py", "Generate", ":material/edit_note:",
     "What does the trained model write, and why does it ramble?"),
    ("attention.py", "Attention", ":material/visibility:",
     "Which earlier words does the model look at when it guesses?"),
]


def lab_link(filename: str, title: str, icon: str) -> None:
    """A link to a lab page, or a plain note while the page is not there yet."""
    if (PAGES_DIR / filename).exists():
        try:
            st.page_link(f"pages/{filename}", label=f"Open {title}", icon=icon)
            return
        except StreamlitPageNotFoundError:
            pass  # the file exists but app.py does not register it (yet)
    st.caption("Coming soon")


st.title("MiniLLM Lab")
st.subheader("Build a tiny language model from scratch, and look inside every piece of it.")

st.divider()

tokens_col, learn_col = st.columns(2, gap="large")

with tokens_col:
    st.header("What is a token, and why?")
    st.markdown(
        """
A computer cannot read words. It only works with **numbers**.

So first we cut text into pieces called **tokens**, and give every piece a number.

Why not just use whole words? English alone has **hundreds of thousands** of words,
plus names, typos and new slang. Most of them are rare, so the model would hardly ever
practise them.

Tokens are small pieces that get reused: *book · keep · ers*.
A few thousand pieces can build **any** word, even one nobody has seen before.
"""
    )

with learn_col:
    st.header("How does a language model learn?")
    st.markdown(
        """
It plays one game, again and again: **guess the next word**.

It reads *"the cat sat on the"* and guesses what comes next: *"mat"*?

When the guess is wrong, it nudges its numbers a tiny bit, so the right answer
becomes a little more likely next time. That is all training is.

The **loss** measures how wrong the guesses are. Lower is better.
"""
    )

st.divider()

st.header("The path through the labs")
st.markdown("Each lab answers one question. Go in this order.")

for row_start in range(0, len(LABS), 3):
    for column, (step, (filename, title, icon, question)) in zip(
        st.columns(3, gap="medium"), enumerate(LABS[row_start:row_start + 3], start=row_start + 1)
    ):
        with column.container(border=True):
            st.subheader(f"{step}. {title}", anchor=False)
            st.markdown(f"##### {question}")
            lab_link(filename, title, icon)

st.divider()

st.header("One-minute classroom quick start")

st.markdown(
    """
1. Open **Train**. Keep the preset: six short sentences about a cat and a dog. Start training.
2. Watch the loss fall fast, then **stop at about 0.384**. It never reaches 0.
3. Ask the class why. After *"the"*, the next word could be *cat*, *dog*, *mat*, *rug*...
   The data itself is ambiguous, so no model can always be right.
   About 0.384 is the floor for this data: a model there has learned everything it can.
4. Open **Generate** and type *the cat*. The model rambles on:
   *"the cat chased the mouse sat on the mat ..."*. It never learned where a sentence ends.
   Turn on the end-of-sentence token, train again, and it stops by itself.
5. Open **Attention** to see which earlier words the model looked at for its guess.
"""
)

st.info(
    "Everything runs on this computer: no internet needed. "
    "Each student's model lives only in their own browser tab.",
    icon=":material/wifi_off:",
)
