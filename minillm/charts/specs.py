"""Reusing a built chart for new numbers: swap the rows, keep everything else.

Building an altair chart and turning it into a Vega-Lite spec (`chart.to_dict()`) validates
the whole spec against the Vega-Lite JSON schema, which costs far more than the rows. When only the numbers
change (another epoch, another seed) and the layout does not (same tokens on the axes, same
number of bars), build the spec once and give it the new rows:

    template = attention_heatmap(first_table, "head 1").to_dict()   # once
    spec = with_data(template, next_table)                          # microseconds
"""

from __future__ import annotations

import pandas as pd

DATASET = "table"


def with_data(spec: dict, table: pd.DataFrame) -> dict:
    """A copy of `spec` (one chart's `to_dict()`, one named dataset) that draws `table`.

    Only valid when the chart's layout does not depend on the rows themselves (the chart
    builders say which inputs it does depend on). `spec` itself is left unchanged.
    """
    data, datasets = spec.get("data"), spec.get("datasets")
    if not (isinstance(data, dict) and "name" in data and isinstance(datasets, dict) and len(datasets) == 1):
        raise ValueError("with_data needs a spec with one top-level named dataset (altair's to_dict())")
    out = dict(spec)
    out["data"] = {"name": DATASET}
    out["datasets"] = {DATASET: table.to_dict("records")}
    return out


def inline_datasets(spec: dict, keep: str) -> dict:
    """A copy of `spec` whose named datasets other than `keep` sit inline where they are used.

    Streamlit turns every top-level dataset into an Arrow table on every draw, a few
    milliseconds each even for a one-row list; inline ``values`` travel as the spec's JSON.
    A chart redrawn on every tick keeps only its changing rows (`keep`) as a dataset.

    >>> spec = {"data": {"name": "t"}, "datasets": {"t": [], "r": [{"y": 1}]},
    ...         "layer": [{"mark": "line"}, {"data": {"name": "r"}, "mark": "rule"}]}
    >>> out = inline_datasets(spec, "t")
    >>> out["datasets"], out["layer"][1]["data"]
    ({'t': []}, {'values': [{'y': 1}]})
    """
    datasets = spec.get("datasets") or {}
    moved = {name: rows for name, rows in datasets.items() if name != keep}

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data")
            out = {key: walk(value) for key, value in node.items() if key != "datasets"}
            if isinstance(data, dict) and set(data) == {"name"} and data["name"] in moved:
                out["data"] = {"values": moved[data["name"]]}
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    out = walk(spec)
    out["datasets"] = {name: rows for name, rows in datasets.items() if name == keep}
    return out
