r"""Put a student's text inside Markdown and have it shown exactly as typed.

Streamlit renders most text elements as Markdown: ``st.info``, ``st.caption``, ``st.markdown``,
and also the value of ``st.metric``. A piece of user text such as ``**``, ``$x$``, ``:red[hi]``
or ``[a](javascript:x)`` would otherwise be drawn as bold, maths, colour or a link. (Raw HTML
is never rendered: Streamlit leaves it out unless ``unsafe_allow_html`` is on.)

>>> print(plain("**bold** $x$ :red[hi] <b>"))
\*\*bold\*\* \$x\$ \:red\[hi\] \<b\>
>>> plain("see https://x.io") == "see https\\:\u2060\\/\\/x\\.io"  # no automatic link
True
>>> plain("a@b.io") == "a\\@\u2060b\\.io"  # nor a mailto: link
True
>>> print(plain("a\tb\nc\x00", max_chars=4))
a→b↵…
"""

from __future__ import annotations

import string

from minillm.display import visible

#: CommonMark lets a backslash escape any ASCII punctuation mark, and nothing else.
_ESCAPES = {ord(ch): "\\" + ch for ch in string.punctuation}


def plain(text: str, *, max_chars: int | None = None) -> str:
    """`text` as Markdown that shows it literally, on one line, cut to `max_chars` with '…'.

    Line breaks, tabs and control characters are drawn as symbols (``↵``, ``→``, ``␀``: the
    symbols of `minillm.display`; spaces stay spaces). A
    word joiner after "://", inside "www" and after "@" stops a typed address from becoming
    a link: Streamlit finds web and e-mail addresses in the text after the escapes are read,
    so a backslash alone does not stop it.
    """
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars] + "…"
    text = text.replace("://", ":\u2060//").replace("www", "w\u2060ww").replace("@", "@\u2060")
    return visible(text, spaces=False).translate(_ESCAPES)  # the notice is one line
