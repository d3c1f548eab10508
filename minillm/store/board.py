"""The class board's store: classes, nicknames and posted runs in a database.

Two objects, so that a student's page cannot reach a teacher's operation by accident:

- `ClassBoard` (from `open_store`): what any session may do. Look a class up, join it with a
  nickname, post a finished run to the class it joined, list the class's visible runs, fetch a
  visible run's model.
- `TeacherBoard(board)`: the teacher's operations on the same database: make a class (a
  hard-to-guess code when none is given), list everything including hidden runs, hide and show
  a run, close, reopen, clear and delete a class, delete expired classes. Whether the person
  at the keyboard is the teacher (the teacher key) is checked by the app before it makes one;
  student pages never construct it.

Every write is one transaction. On SQLite a write takes the database's write lock when it
begins (``BEGIN IMMEDIATE``), on PostgreSQL it locks the class's row, so the limits (runs per
class, per student, per minute) hold with several server processes posting at once. A run is
either wholly in the database or not at all, also when the process or the database server
is killed in the middle.

>>> board = open_store("sqlite://")      # in memory: a notebook's scratch board
>>> code = TeacherBoard(board).create_class("7b-tokens").code
>>> board.join(code, "Ada", session_id="tab-1")
Member(code='7b-tokens', nickname='Ada')
>>> entry = board.post_run(code, "tab-1", settings={"d_model": 32}, parameters=14_000,
...                        final_loss=0.3845, floor=0.3839, sample="the cat sat on the mat")
>>> [(run.nickname, run.final_loss) for run in board.list_runs(code)]
[('Ada', 0.3845)]
>>> board.post_run("7b-tokens", "tab-2", settings={}, parameters=1, final_loss=1, floor=0,
...                sample="")
Traceback (most recent call last):
minillm.store.errors.BoardError: Join the class “7b-tokens” with a nickname before posting to it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from minillm.store import schema
from minillm.store.codes import code_problem, make_code, normalize_code
from minillm.store.errors import BoardError
from minillm.store.limits import MB, BoardLimits
from minillm.store.schema import classes, members, runs

log = logging.getLogger(__name__)

DATABASE_URL_ENV = "MINILLM_DATABASE_URL"
DATA_DIR_ENV = "MINILLM_DATA_DIR"
SQLITE_BUSY_SECONDS = 30
RATE_WINDOW = timedelta(seconds=60)
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives them back without a time zone)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def default_url(environ: Mapping[str, str] = os.environ) -> str:
    """``MINILLM_DATABASE_URL`` if set, else a SQLite file under ``MINILLM_DATA_DIR``
    (default ``~/.local/share/minillm``) named ``board.sqlite``."""
    url = environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        return url
    folder = environ.get(DATA_DIR_ENV, "").strip()
    base = Path(folder).expanduser() if folder else Path.home() / ".local" / "share" / "minillm"
    return f"sqlite:///{base / 'board.sqlite'}"


def _normalize_url(url: str) -> sa.URL:
    """``postgres://`` and ``postgresql://`` mean the psycopg 3 driver (the one installed)."""
    text = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if text.startswith(prefix):
            text = "postgresql+psycopg://" + text[len(prefix):]
    try:
        return sa.make_url(text)
    except sa.exc.ArgumentError as error:
        raise BoardError(
            f"{DATABASE_URL_ENV} is not a database address SQLAlchemy understands ({error}). "
            "Use for example postgresql://user:password@host/dbname."
        ) from None


def _make_engine(url: sa.URL) -> Engine:
    backend = url.get_backend_name()
    if backend == "sqlite":
        memory = url.database in (None, "", ":memory:")
        options: dict = {
            "connect_args": {"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False}
        }
        if memory:
            options["poolclass"] = StaticPool  # one connection, or each would see its own database
        else:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # The sqlite3 module's own transaction handling is turned off: _sqlite_begin
            # says BEGIN itself, IMMEDIATE for writes (they queue for the lock up front
            # instead of failing half-way) and DEFERRED for reads (WAL: never blocked).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            write = conn.get_execution_options().get("minillm_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")

        return engine
    if backend == "postgresql":
        return sa.create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5,
            connect_args={"connect_timeout": 10},
        )
    raise BoardError(
        f"The class board keeps its data in SQLite or PostgreSQL, not {backend}: "
        f"set {DATABASE_URL_ENV} to a postgresql:// address, or leave it unset for SQLite."
    )


def _session_hash(session_id: str) -> str:
    if not isinstance(session_id, str) or not session_id:
        raise BoardError("This browser session has no id; reload the page and try again.")
    return hashlib.sha256(b"minillm-board\0" + session_id.encode("utf-8", "replace")).hexdigest()


def _valid_code(code: str) -> str:
    code = normalize_code(code)
    problem = code_problem(code)
    if problem:
        raise BoardError(problem)
    return code


def nickname_key(nickname: str) -> str:
    """Two nicknames are the same when they differ only in case or Unicode form."""
    return unicodedata.normalize("NFKC", nickname).casefold()


def clean_nickname(nickname: str, limits: BoardLimits) -> str:
    """The nickname as it will be shown, or a BoardError saying what is wrong with it."""
    text = unicodedata.normalize("NFC", str(nickname)).strip()
    if not text:
        raise BoardError("Pick a nickname to show on the class board.")
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cn", "Co") or char in _BIDI_CONTROLS:
            raise BoardError(
                "A nickname cannot hold line breaks, tabs or invisible control characters."
            )
    if not any(unicodedata.category(c)[0] in "LNSP" for c in text):
        raise BoardError("A nickname needs at least one visible letter, digit or symbol.")
    if len(text) > limits.nickname_chars:
        raise BoardError(
            f"A nickname can be at most {limits.nickname_chars} characters; yours has "
            f"{len(text)}."
        )
    return text


def clean_sample(sample: str, limits: BoardLimits) -> str:
    """The sample text kept as given (HTML and all: showing it as text is the page's job),
    except characters no database can keep (NUL, lone surrogates), which become U+FFFD."""
    text = "".join(
        "\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char
        for char in ("" if sample is None else str(sample))
    )
    if len(text) > limits.sample_chars:
        raise BoardError(
            f"The sample generation is {len(text):,} characters; the board keeps at most "
            f"{limits.sample_chars:,}. Post a shorter one."
        )
    return text


def _size(n: int) -> str:
    """A size in words: 6.2 MB, 850 kB, 312 bytes."""
    if n >= MB:
        return f"{n / MB:.1f} MB"
    if n >= 10_000:
        return f"{n / 1000:.0f} kB"
    return f"{n:,} bytes"


def _number(value, what: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BoardError(f"The run's {what} is not a number, so the run cannot be posted.") from None
    if not math.isfinite(number) or number < 0:
        raise BoardError(
            f"The run's {what} is {number}; only a finished run with a real {what} can be posted."
        )
    return number


@dataclass(frozen=True)
class ClassInfo:
    code: str
    created: datetime
    expires: datetime
    closed: bool
    runs: int  # visible runs
    hidden_runs: int
    students: int  # nicknames that joined


@dataclass(frozen=True)
class Member:
    code: str
    nickname: str


@dataclass(frozen=True)
class RunEntry:
    id: int
    class_code: str
    nickname: str
    settings: dict = field(hash=False)
    parameters: int
    final_loss: float
    heldout_loss: float | None
    floor: float
    bits_per_char: float | None
    sample: str
    model_size: int  # bytes; 0 when posted without its model
    hidden: bool
    created: datetime
    mine: bool = False  # posted by the session that asked

    @property
    def has_model(self) -> bool:
        return self.model_size > 0


_RUN_COLUMNS = [c for c in runs.c if c.name != "model"]  # lists never load the model files


def _entry(row, session_hash: str | None) -> RunEntry:
    return RunEntry(
        id=int(row.id),
        class_code=row.class_code,
        nickname=row.nickname,
        settings=json.loads(row.settings),
        parameters=int(row.parameters),
        final_loss=float(row.final_loss),
        heldout_loss=None if row.heldout_loss is None else float(row.heldout_loss),
        floor=float(row.floor),
        bits_per_char=None if row.bits_per_char is None else float(row.bits_per_char),
        sample=row.sample,
        model_size=int(row.model_size),
        hidden=bool(row.hidden),
        created=_utc(row.created),
        mine=session_hash is not None and row.session_hash == session_hash,
    )


class ClassBoard:
    """What every session may do. Thread-safe: each call takes its own connection."""

    def __init__(self, engine: Engine, limits: BoardLimits | None = None,
                 clock: Clock = _utc_now):
        self.engine = engine
        self.limits = limits or BoardLimits.from_env()
        self._clock = clock
        self.backend = engine.dialect.name
        with self._transaction(write=True) as conn:
            if self.backend == "postgresql":
                # two servers starting at once: one creates the tables, the other waits
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261500)"))
            self.schema_version = schema.ensure_schema(conn, self._now())
        self._expire(self._now())

    # -- plumbing -------------------------------------------------------------------------

    def _now(self) -> datetime:
        return _utc(self._clock())

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(minillm_write=True)
                with conn.begin():
                    yield conn
        except (BoardError, sa.exc.IntegrityError):
            raise
        except sa.exc.DBAPIError as error:
            log.warning("class board database error: %s", error)
            raise BoardError(
                "The class board's database did not answer; try again in a moment."
            ) from error

    def _live_class(self, conn: Connection, code: str, *, lock: bool = False):
        query = sa.select(classes).where(classes.c.code == code)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None or _utc(row.expires) <= self._now():
            raise BoardError(
                f"There is no class with the code “{code}” (it may have ended). "
                "Check the link or the code your teacher gave you."
            )
        return row

    def _info(self, conn: Connection, row) -> ClassInfo:
        counts = conn.execute(
            sa.select(
                sa.func.count().filter(runs.c.hidden == sa.false()),
                sa.func.count().filter(runs.c.hidden == sa.true()),
            ).where(runs.c.class_code == row.code)
        ).one()
        students = conn.execute(
            sa.select(sa.func.count()).select_from(members).where(members.c.class_code == row.code)
        ).scalar_one()
        return ClassInfo(
            code=row.code, created=_utc(row.created), expires=_utc(row.expires),
            closed=bool(row.closed), runs=int(counts[0]), hidden_runs=int(counts[1]),
            students=int(students),
        )

    def _expire(self, now: datetime) -> int:
        with self._transaction(write=True) as conn:
            old = sa.select(classes.c.code).where(classes.c.expires <= now)
            conn.execute(sa.delete(runs).where(runs.c.class_code.in_(old)))
            conn.execute(sa.delete(members).where(members.c.class_code.in_(old)))
            return conn.execute(sa.delete(classes).where(classes.c.expires <= now)).rowcount

    def close(self) -> None:
        """Let go of the database connections."""
        self.engine.dispose()

    # -- what a student does ----------------------------------------------------------------

    def class_info(self, code: str) -> ClassInfo:
        """The class behind a code (BoardError when there is none)."""
        code = _valid_code(code)
        with self._transaction(write=False) as conn:
            return self._info(conn, self._live_class(conn, code))

    def join(self, code: str, nickname: str, session_id: str) -> Member:
        """Join the class with a nickname (again with another one renames the session)."""
        code = _valid_code(code)
        nickname = clean_nickname(nickname, self.limits)
        key, who = nickname_key(nickname), _session_hash(session_id)
        taken = BoardError(
            f"Someone in this class already uses the nickname “{nickname}”; pick another one."
        )
        try:
            with self._transaction(write=True) as conn:
                row = self._live_class(conn, code, lock=True)
                if row.closed:
                    raise BoardError(
                        f"The class “{code}” is closed: the teacher has stopped new posts."
                    )
                holder = conn.execute(
                    sa.select(members.c.session_hash).where(
                        members.c.class_code == code, members.c.nickname_key == key
                    )
                ).scalar_one_or_none()
                if holder is not None and holder != who:
                    raise taken
                mine = conn.execute(
                    sa.select(members.c.nickname).where(
                        members.c.class_code == code, members.c.session_hash == who
                    )
                ).first()
                if mine is not None:
                    conn.execute(
                        sa.update(members)
                        .where(members.c.class_code == code, members.c.session_hash == who)
                        .values(nickname=nickname, nickname_key=key)
                    )
                    return Member(code, nickname)
                joined = conn.execute(
                    sa.select(sa.func.count()).select_from(members)
                    .where(members.c.class_code == code)
                ).scalar_one()
                if joined >= self.limits.students_per_class:
                    raise BoardError(
                        f"The class “{code}” is full: {joined} students joined, the most it "
                        "takes. Ask your teacher."
                    )
                conn.execute(
                    sa.insert(members).values(
                        class_code=code, session_hash=who, nickname=nickname,
                        nickname_key=key, joined=self._now(),
                    )
                )
                return Member(code, nickname)
        except sa.exc.IntegrityError:
            raise taken from None

    def member(self, code: str, session_id: str) -> Member | None:
        """The session's nickname in the class, or None when it has not joined it."""
        code = _valid_code(code)
        who = _session_hash(session_id)
        with self._transaction(write=False) as conn:
            nickname = conn.execute(
                sa.select(members.c.nickname).where(
                    members.c.class_code == code, members.c.session_hash == who
                )
            ).scalar_one_or_none()
        return None if nickname is None else Member(code, nickname)

    def knows_session(self, session_id: str) -> bool:
        """Whether this session joined any class still on the board: a browser whose replica
        died brings its token to another replica, which can then keep it (and its nickname)."""
        who = _session_hash(session_id)
        with self._transaction(write=False) as conn:
            return conn.execute(
                sa.select(members.c.class_code).where(members.c.session_hash == who).limit(1)
            ).first() is not None

    def post_run(
        self,
        code: str,
        session_id: str,
        *,
        settings: Mapping,
        parameters: int,
        final_loss: float,
        floor: float,
        sample: str,
        heldout_loss: float | None = None,
        bits_per_char: float | None = None,
        model: bytes | None = None,
    ) -> RunEntry:
        """Post a finished run to the class this session joined, in one transaction."""
        code = _valid_code(code)
        who = _session_hash(session_id)
        limits = self.limits
        try:
            settings_json = json.dumps(dict(settings), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise BoardError(f"The run's settings cannot be stored ({error}).") from None
        if len(settings_json) > limits.settings_bytes:
            raise BoardError(
                f"The run's settings take {len(settings_json) / 1000:,.1f} kB; the board keeps "
                f"at most {limits.settings_kb:g} kB (leave the corpus text out: the model "
                "file carries it)."
            )
        if isinstance(parameters, bool) or not isinstance(parameters, int) or not (
            0 < parameters < 2**31
        ):
            raise BoardError(f"The run's parameter count ({parameters!r}) is not a whole number.")
        values = dict(
            final_loss=_number(final_loss, "final loss"),
            floor=_number(floor, "loss floor"),
            heldout_loss=_number(heldout_loss, "held-out loss", optional=True),
            bits_per_char=_number(bits_per_char, "bits per character", optional=True),
        )
        sample = clean_sample(sample, limits)
        blob = bytes(model) if model else None
        size = len(blob) if blob else 0
        if size > limits.model_bytes:
            raise BoardError(
                f"The model file is {_size(size)}; the board takes models up to "
                f"{_size(limits.model_bytes)}. Post the run without its model, or train a smaller one."
            )
        with self._transaction(write=True) as conn:
            row = self._live_class(conn, code, lock=True)
            if row.closed:
                raise BoardError(
                    f"The class “{code}” is closed: the teacher has stopped new posts."
                )
            nickname = conn.execute(
                sa.select(members.c.nickname).where(
                    members.c.class_code == code, members.c.session_hash == who
                )
            ).scalar_one_or_none()
            if nickname is None:
                raise BoardError(f"Join the class “{code}” with a nickname before posting to it.")
            now = self._now()
            recent = conn.execute(
                sa.select(sa.func.count(), sa.func.min(runs.c.created)).where(
                    runs.c.session_hash == who, runs.c.created > now - RATE_WINDOW
                )
            ).one()
            if recent[0] >= limits.posts_per_minute:
                wait = _utc(recent[1]) + RATE_WINDOW - now
                seconds = max(1, math.ceil(wait.total_seconds()))
                raise BoardError(
                    f"You posted {recent[0]} runs in the last minute, the most the board takes "
                    f"from one student. Wait {'a second' if seconds == 1 else f'{seconds} seconds'}"
                    " and post again."
                )
            totals = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count().filter(runs.c.session_hash == who),
                    sa.func.coalesce(sa.func.sum(runs.c.model_size), 0),
                ).where(runs.c.class_code == code)
            ).one()
            if totals[0] >= limits.runs_per_class:
                raise BoardError(
                    f"The board of “{code}” is full: it holds {totals[0]} runs, the most it "
                    "takes. Ask your teacher to clear it or to open a new class."
                )
            if totals[1] >= limits.runs_per_student:
                raise BoardError(
                    f"You have posted {totals[1]} runs to this class, the most one student may. "
                    "Ask your teacher to hide or clear old ones."
                )
            if size and int(totals[2]) + size > limits.class_bytes:
                raise BoardError(
                    f"The models posted to “{code}” already take {_size(int(totals[2]))} "
                    f"of the {_size(limits.class_bytes)} a class may keep. Post the run without its "
                    "model, or ask your teacher to clear the board."
                )
            run_id = conn.execute(
                sa.insert(runs)
                .values(
                    class_code=code, nickname=nickname, settings=settings_json,
                    parameters=parameters, sample=sample, model=blob, model_size=size,
                    hidden=False, created=now, session_hash=who, **values,
                )
                .returning(runs.c.id)
            ).scalar_one()
            stored = conn.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).one()
            return _entry(stored, who)

    def list_runs(self, code: str, session_id: str | None = None) -> list[RunEntry]:
        """The class's visible runs, oldest first (``mine`` marks the asking session's)."""
        return self._runs(code, session_id, include_hidden=False)

    def _runs(self, code: str, session_id: str | None, include_hidden: bool) -> list[RunEntry]:
        code = _valid_code(code)
        who = _session_hash(session_id) if session_id is not None else None
        query = sa.select(*_RUN_COLUMNS).where(runs.c.class_code == code).order_by(runs.c.id)
        if not include_hidden:
            query = query.where(runs.c.hidden == sa.false())
        with self._transaction(write=False) as conn:
            self._live_class(conn, code)
            return [_entry(row, who) for row in conn.execute(query)]

    def get_model(self, code: str, run_id: int) -> bytes:
        """A visible run's model file."""
        return self._model(code, run_id, include_hidden=False)

    def _model(self, code: str, run_id: int, include_hidden: bool) -> bytes:
        code = _valid_code(code)
        with self._transaction(write=False) as conn:
            self._live_class(conn, code)
            row = conn.execute(
                sa.select(runs.c.model, runs.c.hidden).where(
                    runs.c.class_code == code, runs.c.id == int(run_id)
                )
            ).first()
        if row is None or (row.hidden and not include_hidden):
            raise BoardError(f"The class “{code}” has no run number {run_id}.")
        if row.model is None:
            raise BoardError(f"Run number {run_id} was posted without its model.")
        return bytes(row.model)


class TeacherBoard:
    """The teacher's operations. The app makes one only after checking the teacher key."""

    def __init__(self, board: ClassBoard):
        self.board = board
        self.limits = board.limits

    def create_class(self, code: str | None = None, *, days: float | None = None) -> ClassInfo:
        """A new class; with no code, a hard-to-guess one (`minillm.store.codes.make_code`)."""
        board = self.board
        now = board._now()
        board._expire(now)
        life = timedelta(days=days if days is not None else self.limits.class_days)
        if life <= timedelta(0):
            raise BoardError("A class must last longer than no time at all.")
        chosen = _valid_code(code) if code is not None else None
        for _attempt in range(20):
            candidate = chosen or make_code()
            try:
                with board._transaction(write=True) as conn:
                    if board.backend == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261501)"))
                    count = conn.execute(
                        sa.select(sa.func.count()).select_from(classes)
                    ).scalar_one()
                    if count >= self.limits.classes:
                        raise BoardError(
                            f"The board already holds {count} classes, the most it takes. "
                            "Delete finished classes first."
                        )
                    conn.execute(
                        sa.insert(classes).values(
                            code=candidate, created=now, expires=now + life, closed=False
                        )
                    )
                    row = board._live_class(conn, candidate)
                    return board._info(conn, row)
            except sa.exc.IntegrityError:
                if chosen:
                    raise BoardError(
                        f"A class with the code “{chosen}” already exists; pick another code, "
                        "or leave it empty for a new one."
                    ) from None
        raise BoardError("No free class code was found; try again.")  # pragma: no cover

    def list_classes(self) -> list[ClassInfo]:
        """Every class that has not ended, newest first."""
        board = self.board
        with board._transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(classes).where(classes.c.expires > board._now())
                .order_by(classes.c.created.desc(), classes.c.code)
            ).all()
            return [board._info(conn, row) for row in rows]

    def class_info(self, code: str) -> ClassInfo:
        return self.board.class_info(code)

    def list_runs(self, code: str, include_hidden: bool = True) -> list[RunEntry]:
        return self.board._runs(code, None, include_hidden=include_hidden)

    def get_model(self, code: str, run_id: int) -> bytes:
        return self.board._model(code, run_id, include_hidden=True)

    def _set_hidden(self, code: str, run_id: int, hidden: bool) -> RunEntry:
        board = self.board
        code = _valid_code(code)
        with board._transaction(write=True) as conn:
            board._live_class(conn, code, lock=True)
            changed = conn.execute(
                sa.update(runs)
                .where(runs.c.class_code == code, runs.c.id == int(run_id))
                .values(hidden=hidden)
            ).rowcount
            if not changed:
                raise BoardError(f"The class “{code}” has no run number {run_id}.")
            return _entry(conn.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == int(run_id))).one(), None)

    def hide_run(self, code: str, run_id: int) -> RunEntry:
        """Take a run off the class's board (its row stays; `show_run` puts it back)."""
        return self._set_hidden(code, run_id, True)

    def show_run(self, code: str, run_id: int) -> RunEntry:
        return self._set_hidden(code, run_id, False)

    def _set_closed(self, code: str, closed: bool) -> ClassInfo:
        board = self.board
        code = _valid_code(code)
        with board._transaction(write=True) as conn:
            board._live_class(conn, code, lock=True)
            conn.execute(sa.update(classes).where(classes.c.code == code).values(closed=closed))
            return board._info(conn, board._live_class(conn, code))

    def close_class(self, code: str) -> ClassInfo:
        """No more joins or posts; the board stays readable."""
        return self._set_closed(code, True)

    def reopen_class(self, code: str) -> ClassInfo:
        return self._set_closed(code, False)

    def clear_class(self, code: str) -> int:
        """Delete every run and nickname of the class (students join again); how many runs."""
        board = self.board
        code = _valid_code(code)
        with board._transaction(write=True) as conn:
            board._live_class(conn, code, lock=True)
            deleted = conn.execute(sa.delete(runs).where(runs.c.class_code == code)).rowcount
            conn.execute(sa.delete(members).where(members.c.class_code == code))
            return deleted

    def delete_class(self, code: str) -> None:
        board = self.board
        code = _valid_code(code)
        with board._transaction(write=True) as conn:
            board._live_class(conn, code, lock=True)
            conn.execute(sa.delete(runs).where(runs.c.class_code == code))
            conn.execute(sa.delete(members).where(members.c.class_code == code))
            conn.execute(sa.delete(classes).where(classes.c.code == code))

    def expire_old(self, now: datetime | None = None) -> int:
        """Delete the classes (and their runs) whose time is up; how many classes."""
        return self.board._expire(_utc(now) if now is not None else self.board._now())


def open_store(
    url: str | None = None,
    *,
    limits: BoardLimits | None = None,
    clock: Clock = _utc_now,
    environ: Mapping[str, str] = os.environ,
) -> ClassBoard:
    """Open (and on first use create) the board's database.

    ``url`` defaults to `default_url`: ``MINILLM_DATABASE_URL``, else a SQLite file.
    ``limits`` default to `BoardLimits.from_env`. ``clock`` gives "now" (tests pass their own).
    """
    address = _normalize_url(url if url is not None else default_url(environ))
    engine = _make_engine(address)
    try:
        return ClassBoard(engine, limits or BoardLimits.from_env(environ), clock)
    except BoardError as error:
        engine.dispose()
        if isinstance(error.__cause__, sa.exc.DBAPIError):
            raise BoardError(
                "The class board's database at "
                f"{address.render_as_string(hide_password=True)} cannot be used: "
                f"{str(error.__cause__.orig).strip().splitlines()[0]}"
            ) from error.__cause__
        raise
    except Exception:
        engine.dispose()
        raise
