"""Class board: every run the class posted, live; the teacher opens any posted model.

Layout only. The class, nicknames, posting and the teacher key are `ui.class_mode`; the
board's parts (live table, chart, best per question, who is still training, the teacher's
controls) are `ui.board_view`; the numbers are `minillm.board_report`; the store is
`minillm.store`.
"""

import streamlit as st

from minillm.store import BoardError
from ui import board_view, class_mode
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py


def open_code():  # the code box's callback: runs before the page, so the page sees the class
    problem = class_mode.choose_class(st.session_state.get("board_code", ""))
    if problem:
        st.session_state["board_code_message"] = ("error", problem)


st.title("Class board")
st.header("Whose model learned most, and with which settings?")
st.markdown(
    "Everyone in the class trains on the **Train** page and posts their finished run here with "
    "one click. The board shows all of them as they come in: the settings, the model's size, "
    "its loss, and one sentence it wrote."
)

teacher = class_mode.teacher_available() and class_mode.is_teacher()
if teacher:
    board_view.teacher_classes()

code = class_mode.current_class()
if code is None:
    st.subheader("Join your class")
    st.text_input("Class code (from your teacher, e.g. 7b-tokens)", key="board_code",
                  max_chars=40, on_change=open_code)
    st.button("Open the class", key="board_code_go", on_click=open_code,
              icon=":material/login:")
    class_mode.show_message("board_code_message")
    st.stop()

try:
    info = class_mode.store().class_info(code)
except BoardError as error:  # the class ended, or the database does not answer
    st.error(str(error), icon=":material/group_off:")
    st.button("Leave this class", key="board_leave", on_click=class_mode.leave_class)
    st.stop()

st.markdown(f"### :material/groups: Class **{code}**")
nickname = class_mode.member()
if nickname:
    st.caption(f"You are on this board as **{class_mode.plain(nickname)}**. Post a run from "
               "the Train page, under its result.")
elif info.closed:
    st.info("This class is closed: the teacher has stopped new nicknames and posts.",
            icon=":material/lock:")
elif not teacher:
    class_mode.join_form("class_join_board")

if teacher:
    board_view.teacher_runs(code)

board_view.live_board(code, teacher)

st.button("Leave this class", key="board_leave", on_click=class_mode.leave_class,
          icon=":material/logout:", help="This browser stops being in the class (your runs "
                                         "stay on the board).")
