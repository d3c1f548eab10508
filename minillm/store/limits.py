"""What one class may put on the board, and how long a class lives.

Every limit is a setting of the server, read from an environment variable by
`BoardLimits.from_env` (a value that is not a positive number is ignored, as for the training
budgets in `minillm.budget`):

| variable | default | what it bounds |
| --- | --- | --- |
| ``MINILLM_BOARD_RUNS`` | 300 | runs on one class's board |
| ``MINILLM_BOARD_RUNS_PER_STUDENT`` | 30 | runs one student posts to one class |
| ``MINILLM_BOARD_STUDENTS`` | 200 | nicknames that join one class |
| ``MINILLM_BOARD_MODEL_MB`` | 8 | one posted model file (as large as a model file may be: every model the training budgets allow can be posted) |
| ``MINILLM_BOARD_CLASS_MB`` | 200 | all the model files of one class together |
| ``MINILLM_BOARD_NICKNAME_CHARS`` | 24 | a nickname |
| ``MINILLM_BOARD_SAMPLE_CHARS`` | 500 | a run's sample generation |
| ``MINILLM_BOARD_SETTINGS_KB`` | 16 | a run's settings, as JSON (the corpus text belongs in the model file) |
| ``MINILLM_BOARD_POSTS_PER_MINUTE`` | 6 | posts from one session in any 60 seconds |
| ``MINILLM_BOARD_CLASS_DAYS`` | 30 | a class's life: after that it and its runs are deleted |
| ``MINILLM_BOARD_CLASSES`` | 1000 | classes open at once on one database |

>>> BoardLimits.from_env({"MINILLM_BOARD_RUNS": "50", "MINILLM_BOARD_CLASS_DAYS": "soon"}).runs_per_class
50
>>> BoardLimits.from_env({"MINILLM_BOARD_CLASS_DAYS": "soon"}).class_days
30.0
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from minillm.checkpoint import MAX_CHECKPOINT_BYTES

MB = 1_000_000


@dataclass(frozen=True)
class BoardLimits:
    runs_per_class: int = 300
    runs_per_student: int = 30
    students_per_class: int = 200
    model_mb: float = MAX_CHECKPOINT_BYTES / MB
    class_mb: float = 200.0
    nickname_chars: int = 24
    sample_chars: int = 500
    settings_kb: float = 16.0
    posts_per_minute: int = 6
    class_days: float = 30.0
    classes: int = 1000

    @property
    def model_bytes(self) -> int:
        return int(self.model_mb * MB)

    @property
    def class_bytes(self) -> int:
        return int(self.class_mb * MB)

    @property
    def settings_bytes(self) -> int:
        return int(self.settings_kb * 1000)

    @classmethod
    def from_env(cls, environ=os.environ) -> "BoardLimits":
        names = {
            "runs_per_class": "MINILLM_BOARD_RUNS",
            "runs_per_student": "MINILLM_BOARD_RUNS_PER_STUDENT",
            "students_per_class": "MINILLM_BOARD_STUDENTS",
            "model_mb": "MINILLM_BOARD_MODEL_MB",
            "class_mb": "MINILLM_BOARD_CLASS_MB",
            "nickname_chars": "MINILLM_BOARD_NICKNAME_CHARS",
            "sample_chars": "MINILLM_BOARD_SAMPLE_CHARS",
            "settings_kb": "MINILLM_BOARD_SETTINGS_KB",
            "posts_per_minute": "MINILLM_BOARD_POSTS_PER_MINUTE",
            "class_days": "MINILLM_BOARD_CLASS_DAYS",
            "classes": "MINILLM_BOARD_CLASSES",
        }
        values = {}
        for field in fields(cls):
            raw = environ.get(names[field.name])
            try:
                number = float(raw) if raw is not None else math.nan
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number > 0):
                continue
            if field.type in ("int", int):
                if number < 1:
                    continue
                number = int(number)
            values[field.name] = number
        return cls(**values)
