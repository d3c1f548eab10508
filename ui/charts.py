"""Drawing charts: every chart on every page goes through `draw` (or `show_chart`).

`draw` applies the reading sizes at render time (`ui.presentation.styled`: chart text at least
14 px, larger in presentation mode), so the builders in ``minillm.charts`` stay pure.

Turning an altair chart into a Vega-Lite spec validates it against the whole JSON schema on
every rerun, even when nothing changed, which is slow next to drawing it. `show_chart` builds
and validates each distinct chart once (per its builder and inputs) and draws the cached spec.
"""

import streamlit as st

from ui import presentation


@st.cache_data(max_entries=64, show_spinner=False)
def _spec(_builder, builder_name: str, args: tuple, kwargs: dict) -> dict:
    return _builder(*args, **kwargs).to_dict()


def draw(spec: dict, container=None, width: str = "stretch", **kwargs) -> None:
    """`st.vega_lite_chart(spec)` in `container` (default: here), at the mode's text sizes."""
    (container or st).vega_lite_chart(presentation.styled(spec, presentation.is_on()),
                                      width=width, **kwargs)


def draw_wide_or_narrow(wide: dict, narrow: dict, key: str) -> None:
    """`wide` on a screen wider than a phone, `narrow` on a phone (a grid of panels in one
    column, say): both are sent, CSS shows the one that fits, so nothing runs off the side."""
    phone = presentation.PHONE_MAX_PX
    st.html(f"<style>@media (max-width: {phone}px) {{ .st-key-{key}-wide {{ display: none; }} }}"
            f" @media (min-width: {phone + 1}px) {{ .st-key-{key}-narrow {{ display: none; }} }}"
            "</style>")
    for form, spec in (("wide", wide), ("narrow", narrow)):
        with st.container(key=f"{key}-{form}"):
            draw(spec, width="content")


def show_chart(builder, *args, **kwargs) -> None:
    """`st.altair_chart(builder(*args, **kwargs))`, with the spec cached per inputs."""
    name = f"{builder.__module__}.{builder.__qualname__}"
    draw(_spec(builder, name, args, kwargs))
