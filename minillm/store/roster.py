"""Who joined a class: the nicknames, in the order they joined (read-only).

The board page shows who has joined and not posted yet ("still training"). This reads the
store's ``members`` table in one short transaction; it writes nothing and never returns the
sessions' hashes.

>>> from minillm.store import TeacherBoard, open_store
>>> board = open_store("sqlite://")
>>> code = TeacherBoard(board).create_class("7b-tokens").code
>>> _ = board.join(code, "Ada", session_id="tab-1")
>>> [nickname for nickname, _joined in roster(board, code)]
['Ada']
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from minillm.store.board import ClassBoard, _utc, _valid_code
from minillm.store.schema import members


def roster(board: ClassBoard, code: str) -> list[tuple[str, datetime]]:
    """(nickname, joined) for every member of the class, oldest first."""
    code = _valid_code(code)
    query = (sa.select(members.c.nickname, members.c.joined)
             .where(members.c.class_code == code).order_by(members.c.joined, members.c.nickname))
    with board._transaction(write=False) as conn:
        board._live_class(conn, code)
        return [(row.nickname, _utc(row.joined)) for row in conn.execute(query)]
