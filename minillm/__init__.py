"""minillm: the engine behind MiniLLM Lab.

Everything the app shows can be reproduced from a notebook with this package: tokenizers
(word, character, byte, tiktoken encodings, a BPE you train), the notebook's dataset of
(context window -> next token) pairs and its loss floor, the tiny transformer, its trainer and
its sampler. Nothing here imports streamlit.
"""
