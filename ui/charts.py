"""Drawing altair charts without paying for their validation on every rerun.

Turning an altair chart into a Vega-Lite spec validates it against the whole JSON schema:
0.1 to 0.3 s a chart, on every rerun, even when nothing changed. `show_chart` builds and
validates each distinct chart once (per its builder and inputs) and draws the cached spec.
"""

import streamlit as st


@st.cache_data(max_entries=64, show_spinner=False)
def _spec(_builder, builder_name: str, args: tuple, kwargs: dict) -> dict:
    return _builder(*args, **kwargs).to_dict()


def show_chart(builder, *args, **kwargs) -> None:
    """`st.altair_chart(builder(*args, **kwargs))`, with the spec cached per inputs."""
    name = f"{builder.__module__}.{builder.__qualname__}"
    st.vega_lite_chart(_spec(builder, name, args, kwargs), width="stretch")
