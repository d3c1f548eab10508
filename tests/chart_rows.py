"""The rows a drawn Vega-Lite chart carries, as an AppTest sees them.

Streamlit sends a chart's top-level datasets as Arrow beside the spec; rows that sit inline
in the spec (``"data": {"values": [...]}``, `minillm.charts.specs.inline_datasets`) travel in
its JSON. A test asks for both, one DataFrame per dataset, wherever the chart keeps it.
"""

from __future__ import annotations

import json

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df


def _inline(node) -> list[list[dict]]:
    found = []
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and isinstance(data.get("values"), list):
            found.append(data["values"])
        for value in node.values():
            found.extend(_inline(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_inline(item))
    return found


def chart_data(at, index: int = 0) -> list[pd.DataFrame]:
    """Every dataset of the page's `index`-th Vega-Lite chart: Arrow ones first, then inline."""
    chart = at.get("vega_lite_chart")[index].proto
    frames = [convert_arrow_bytes_to_pandas_df(data.data.data) for data in chart.datasets]
    return frames + [pd.DataFrame(rows) for rows in _inline(json.loads(chart.spec))]
