"""minillm.store: the class board's database (classes, nicknames, posted runs).

This package knows nothing of Streamlit or of the app's pages: it is plain Python over
SQLAlchemy 2 (Core), usable from a notebook or a script. The app's pages decide who is the
teacher and show every nickname and sample as text; the store keeps text exactly as given.

- SQLite in a file by default (``$MINILLM_DATA_DIR/board.sqlite``, else
  ``~/.local/share/minillm/board.sqlite``): nothing to set up, survives a restart. WAL
  journal, foreign keys on, a busy timeout, ``synchronous=FULL``.
- PostgreSQL when ``MINILLM_DATABASE_URL`` points at one (``postgresql://user:pw@host/db``,
  through psycopg 3): several servers (replicas) share one board.
- The tables are created on start and carry a schema version (`schema`); a database made by
  a newer version of the app is refused with a sentence saying so.
- Every write is one transaction; limits per class and per student (`limits`) and expiry of
  old classes; every error a person may see is a `BoardError` whose message is a sentence.

Start with `open_store` (student operations, `ClassBoard`) and `TeacherBoard` (the teacher's).
"""

from minillm.store.board import (
    ClassBoard,
    ClassInfo,
    Member,
    RunEntry,
    TeacherBoard,
    default_url,
    open_store,
)
from minillm.store.codes import make_code
from minillm.store.errors import BoardError
from minillm.store.limits import BoardLimits
from minillm.store.schema import SCHEMA_VERSION

__all__ = [
    "BoardError",
    "BoardLimits",
    "ClassBoard",
    "ClassInfo",
    "Member",
    "RunEntry",
    "SCHEMA_VERSION",
    "TeacherBoard",
    "default_url",
    "make_code",
    "open_store",
]
