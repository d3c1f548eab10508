"""The class board's chart (minillm/charts/board.py): a pure function of the runs' table."""

from __future__ import annotations

import pandas as pd

from minillm.charts.board import board_chart, chart_rows


def _frame():
    return pd.DataFrame({"run": [1, 2], "nickname": ["Ada", "<b>Bo</b>"],
                         "parameters": [13839, 52000], "final loss": [0.3845, 0.5],
                         "held-out loss": [None, 0.61], "floor": [0.3839, 0.3839],
                         "settings": ["notebook settings", "d_model 64"]})


def test_each_run_shows_its_held_out_loss_where_it_has_one():
    rows = chart_rows(_frame(), "settings")
    assert list(rows["loss"]) == [0.3845, 0.61]
    assert list(rows["loss shown"]) == ["training", "held-out"]
    assert list(rows["nickname"]) == ["Ada", "<b>Bo</b>"]  # as typed: the chart draws text


def test_the_axes_read_as_a_student_expects():
    spec = board_chart(_frame()).to_dict()
    x, y = spec["encoding"]["x"], spec["encoding"]["y"]
    assert x["scale"]["type"] == "log"
    # three decimals on the loss axis: with one run Vega-Lite's own ticks gave six
    assert y["axis"]["format"] == ".3f" and y["scale"]["zero"] is False
