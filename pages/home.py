"""Home: the lesson's two questions, the path through the labs, a one-minute quick start.

Written to be read from the back of a classroom: big headers, short sentences. The labs are
listed from `ui.pages_list`, the same list app.py registers, so Home lists every page.
"""

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from ui.pages_list import LABS
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py


def lab_link(lab) -> None:
    """A link to a lab page; its address as text when this file runs without app.py (a test)."""
    try:
        st.page_link(lab.file, label=f"Open {lab.title}", icon=lab.icon)
    except StreamlitPageNotFoundError:  # run on its own, no page is registered
        st.caption(f"Open {lab.title} at /{lab.url_path}")


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
    for column, (step, lab) in zip(
        st.columns(3, gap="medium"), enumerate(LABS[row_start:row_start + 3], start=row_start + 1)
    ):
        with column.container(border=True):
            st.subheader(f"{step}. {lab.title}", anchor=False)
            st.markdown(f"##### {lab.question}")
            lab_link(lab)

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
