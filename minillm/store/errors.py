"""The one error the board raises: its message is a plain sentence a student or teacher can read."""

from __future__ import annotations


class BoardError(ValueError):
    """Something the class board cannot do; ``str(error)`` says what and, where it can, what to do."""
