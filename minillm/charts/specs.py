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
