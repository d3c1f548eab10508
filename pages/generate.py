"""Generate: what does the trained model write? (being written)"""

import streamlit as st

st.title("Generate")
st.header("What does the model write, and is it creating or just remembering?")
