"""Attention: which earlier words does the model look at? (being written)"""

import streamlit as st

st.title("Attention")
st.header("When the model predicts the next word, which earlier words does it look at?")
