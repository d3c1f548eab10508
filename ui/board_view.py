"""The Class board page's parts: the live board, and the teacher's class and run controls.

- `live_board(code)`: a fragment that asks the store for the class's runs every
  `POLL_SECONDS` (``MINILLM_BOARD_POLL_SECONDS``, default 3) and draws them: a few numbers, a
  sortable table, the chart (loss against parameters, coloured by a setting), the best run
  per question and who has joined but not posted yet. Every nickname, sample and setting is
  text: in ``st.dataframe`` cells, or through `ui.plain_text.plain` in Markdown.
- `teacher_classes()`: start a class (a code of the teacher's, or a hard-to-guess one made by
  the store), switch between open classes, and the links to hand out.
- `teacher_runs(code)`: hide or show a run, open a posted model on this screen (Generate and
  Attention then use it; `minillm.checkpoint.load_checkpoint` with the server's budgets),
  close, reopen or clear the class.

Both teacher parts use `ui.class_mode.teacher_board()`, which exists only after the teacher
key check; the page calls them only for the teacher.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from minillm.board_report import (
    best_per_question,
    colour_choices,
    runs_frame,
    score_of,
    still_training,
)
from minillm.charts.board import board_chart, chart_rows
from minillm.charts.specs import with_data
from minillm.store import BoardError
from minillm.store.roster import roster
from ui import class_mode
from ui.charts import draw
from ui.plain_text import plain


def _poll_seconds() -> float:
    try:
        value = float(os.environ.get("MINILLM_BOARD_POLL_SECONDS", "3"))
    except ValueError:
        return 3.0
    return value if 0.5 <= value <= 600 else 3.0


POLL_SECONDS = _poll_seconds()
TABLE_COLUMNS = ["run", "nickname", "question", "settings", "parameters", "final loss",
                 "held-out loss", "floor", "bits per char", "sample", "posted", "model"]
NUMBER = st.column_config.NumberColumn
MISSING = "—"  # a table cell with no number (Streamlit's default shows the word "None")
TABLE_CONFIG = {
    "run": NUMBER("run", format="%d", width="small"),
    "parameters": NUMBER(format="localized"),
    "final loss": NUMBER(format="%.4f"), "held-out loss": NUMBER(format="%.4f"),
    "floor": NUMBER(format="%.4f"), "bits per char": NUMBER(format="%.3f"),
    "posted": st.column_config.DatetimeColumn(format="HH:mm:ss"),
    "model": st.column_config.CheckboxColumn("model file"),
    "sample": st.column_config.TextColumn(width="large"),
}


@st.cache_data(max_entries=32, show_spinner=False)
def _chart_template(colour_by: str) -> dict:
    """The chart's spec for one colouring; each poll swaps in the runs' rows (no validation)."""
    skeleton = pd.DataFrame({"run": [0], "nickname": [""], "parameters": [1], "final loss": [1.0],
                             "held-out loss": [None], "floor": [0.0], "settings": [""],
                             f"setting: {colour_by}": [""]})
    return board_chart(skeleton, colour_by).to_dict()


def chart_spec(frame: pd.DataFrame, colour_by: str) -> dict:
    return with_data(_chart_template(colour_by), chart_rows(frame, colour_by))


def _fetch(code: str, teacher: bool):
    board = class_mode.store()
    runs = (class_mode.teacher_board().list_runs(code, include_hidden=False) if teacher
            else board.list_runs(code, class_mode.session_id()))
    return board.class_info(code), runs, roster(board, code)


@st.fragment(run_every=POLL_SECONDS)
def live_board(code: str, teacher: bool = False) -> None:
    """The class's runs, refreshed every POLL_SECONDS."""
    try:
        info, runs, members = _fetch(code, teacher)
    except BoardError as error:
        st.error(str(error), icon=":material/cloud_off:")
        return
    numbers = st.columns(4)
    numbers[0].metric("Runs posted", f"{info.runs:,}")
    numbers[1].metric("Students joined", f"{info.students:,}")
    waiting = still_training(members, runs)
    numbers[2].metric("Still training", f"{len(waiting):,}",
                      help="Joined the class and have not posted a run yet")
    numbers[3].metric("Class", "closed" if info.closed else "open",
                      help="A closed class takes no new nicknames or posts")
    if not runs:
        st.info("No runs on the board yet. Train a model, then press **Post this run** under "
                "its result on the Train page.", icon=":material/hourglass_empty:")
    else:
        frame = runs_frame(runs)
        _latest(runs)
        _runs_table(frame)
        _chart(frame, runs)
        _best(runs)
    if waiting:
        names = ", ".join(plain(name) for name in waiting)
        st.markdown(f"**Still training** (joined, nothing posted yet): {names}")
    st.caption(f"Updates by itself every {POLL_SECONDS:g} seconds.")


def _latest(runs, shown: int = 5) -> None:
    """The newest posts in words (nicknames and samples as text, through `plain`)."""
    st.subheader("Latest posts")
    lines = []
    for run in reversed(runs[-shown:]):
        sample = plain(run.sample, max_chars=120)
        lines.append(f"- **{plain(run.nickname)}** posted run #{run.id}: loss "
                     f"{score_of(run):.4f} with {run.parameters:,} parameters. "
                     f"It wrote: “{sample}”")
    st.markdown("\n".join(lines))


def _runs_table(frame: pd.DataFrame) -> None:
    st.subheader("All runs")
    st.caption(f"Click a column's title to sort by it. Your own runs are marked ★. A dash "
               f"({MISSING}) means the run has no such number (no held-out lines, say).")
    shown = frame[TABLE_COLUMNS].copy()
    shown["run"] = frame["run"]
    shown.insert(1, "★", frame["mine"].map({True: "★", False: ""}))
    st.dataframe(shown, hide_index=True, column_config=TABLE_CONFIG, key="board_table",
                 width="stretch", placeholder=MISSING)


def _chart(frame: pd.DataFrame, runs) -> None:
    st.subheader("Loss against model size")
    choices = colour_choices(runs)
    colour_by = st.selectbox("Colour the points by", choices, key="board_colour",
                             format_func=lambda n: "the whole settings" if n == "settings"
                             else n.replace("_", " "))
    draw(chart_spec(frame, colour_by or "settings"))


def _best(runs) -> None:
    st.subheader("Best run per question")
    rows = [{"question": q, "nickname": r.nickname, "run": r.id,
             "loss": score_of(r), "which loss": "held-out" if r.heldout_loss is not None
             else "training", "parameters": r.parameters, "settings": r.settings.get("label", ""),
             "sample": r.sample}
            for r in best_per_question(runs) for q in [r.settings.get("question") or
                                                       "(no lesson)"]]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder=MISSING,
                 column_config={"loss": NUMBER(format="%.4f"), "run": NUMBER(format="%d"),
                                "parameters": NUMBER(format="localized")})


# -- the teacher's controls ---------------------------------------------------------------


def _start_class() -> None:
    wanted = (st.session_state.get("board_new_code") or "").strip()
    try:
        info = class_mode.teacher_board().create_class(wanted or None)
    except (BoardError, PermissionError) as error:
        st.session_state["board_teacher_message"] = ("error", str(error))
        return
    class_mode.choose_class(info.code)
    st.session_state["board_new_code"] = ""
    st.session_state["board_teacher_message"] = ("success", f"Class {info.code} is open.")


def _switch_class() -> None:
    picked = st.session_state.get("board_pick_class")
    if picked:
        class_mode.choose_class(picked)


def teacher_classes() -> None:
    """Start a class or switch to another one; the links for the students."""
    with st.expander("Teacher: classes", icon=":material/key:", expanded=True):
        left, right = st.columns(2)
        with left:
            st.text_input("New class code (leave empty for a hard-to-guess one)",
                          key="board_new_code", max_chars=40, placeholder="e.g. 7b-tokens")
            st.button("Start a class", key="board_start", icon=":material/add:",
                      on_click=_start_class)
            class_mode.show_message("board_teacher_message")
        with right:
            try:
                open_classes = class_mode.teacher_board().list_classes()
            except BoardError as error:
                st.error(str(error), icon=":material/cloud_off:")
                open_classes = []
            codes = [c.code for c in open_classes]
            if codes:
                current = class_mode.current_class()
                st.selectbox("Open classes", codes, key="board_pick_class",
                             index=codes.index(current) if current in codes else None,
                             on_change=_switch_class, placeholder="Pick a class",
                             format_func=lambda c: next(
                                 f"{c} ({i.runs} runs, {i.students} students"
                                 f"{', closed' if i.closed else ''})"
                                 for i in open_classes if i.code == c))
        code = class_mode.current_class()
        if code:
            st.markdown("**Links for the students** (copy with the icon at the corner):")
            from ui.lessons import page_address

            st.code(page_address("train", {"class": [code]}), language=None)
            st.code(page_address("class_board", {"class": [code]}), language=None)


def _run_label(run) -> str:
    return (f"#{run.id} · {run.nickname} · loss {score_of(run):.4f}"
            f"{' · hidden' if run.hidden else ''}{'' if run.has_model else ' · no model'}")


def _teacher_do(action: str, code: str) -> None:
    run_id = st.session_state.get("board_pick_run")
    message = "board_runs_message"
    try:
        teacher = class_mode.teacher_board()
        if action == "hide":
            teacher.hide_run(code, run_id)
            text = f"Run #{run_id} is hidden from the board."
        elif action == "show":
            teacher.show_run(code, run_id)
            text = f"Run #{run_id} is on the board again."
        elif action == "open":
            text = _open_model(teacher, code, run_id)
        elif action == "close":
            teacher.close_class(code)
            text = f"Class {code} is closed: no new nicknames or posts (the board stays)."
        elif action == "reopen":
            teacher.reopen_class(code)
            text = f"Class {code} is open again."
        elif action == "clear":
            if not st.session_state.get("board_clear_sure"):
                st.session_state[message] = ("error", "Tick “Yes, delete every run” first.")
                return
            deleted = teacher.clear_class(code)
            st.session_state["board_clear_sure"] = False
            text = (f"The board of {code} is empty: {deleted} runs and all nicknames deleted "
                    "(students join again).")
        else:
            return
    except (BoardError, PermissionError, ValueError) as error:
        st.session_state[message] = ("error", str(error))
        return
    st.session_state[message] = ("success", text)


def _open_model(teacher, code: str, run_id: int) -> str:
    from minillm.checkpoint import load_checkpoint
    from ui import model_state

    data = teacher.get_model(code, run_id)
    model_state.adopt(load_checkpoint(data, budgets=model_state.budgets()))
    return (f"Run #{run_id} is now the model of this screen: Generate and Attention use it "
            "(your own model became a faint curve on Train).")


def teacher_runs(code: str) -> None:
    """Moderation and the projector: one run at a time, and the class as a whole."""
    with st.expander("Teacher: runs and the class", icon=":material/key:", expanded=True):
        try:
            runs = class_mode.teacher_board().list_runs(code, include_hidden=True)
            info = class_mode.store().class_info(code)
        except (BoardError, PermissionError) as error:
            st.error(str(error), icon=":material/cloud_off:")
            return
        class_mode.show_message("board_runs_message")
        if runs:
            by_id = {run.id: run for run in runs}
            ids = list(reversed(by_id))
            st.selectbox("Run", ids, key="board_pick_run",
                         format_func=lambda i: _run_label(by_id[i]) if i in by_id else str(i))
            picked = by_id.get(st.session_state.get("board_pick_run"))
            if picked is not None:
                st.text(f"Sample of #{picked.id}: {picked.sample}")
            hide, show, project = st.columns(3)
            hide.button("Hide from the board", key="board_hide", icon=":material/visibility_off:",
                        on_click=_teacher_do, args=("hide", code),
                        disabled=picked is None or picked.hidden)
            show.button("Show again", key="board_show", icon=":material/visibility:",
                        on_click=_teacher_do, args=("show", code),
                        disabled=picked is None or not picked.hidden)
            project.button("Open on this screen", key="board_open", icon=":material/cast:",
                           on_click=_teacher_do, args=("open", code),
                           disabled=picked is None or not picked.has_model,
                           help="This run's model becomes this tab's model: Generate and "
                                "Attention then show it.")
            if info.hidden_runs:
                st.caption(f"{info.hidden_runs} run(s) hidden from the students.")
        else:
            st.caption("No runs posted yet.")
        st.divider()
        close, clear = st.columns(2)
        if info.closed:
            close.button("Reopen the class", key="board_reopen", icon=":material/lock_open:",
                         on_click=_teacher_do, args=("reopen", code))
        else:
            close.button("Close the class", key="board_close", icon=":material/lock:",
                         on_click=_teacher_do, args=("close", code),
                         help="No new nicknames or posts; the board stays readable.")
        clear.checkbox("Yes, delete every run", key="board_clear_sure")
        clear.button("Clear the board", key="board_clear", icon=":material/delete_sweep:",
                     on_click=_teacher_do, args=("clear", code),
                     help="Deletes every run and nickname of the class.")
