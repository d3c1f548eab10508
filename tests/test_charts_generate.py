"""minillm.charts.generate: a spec Vega-Lite compiles without dropping or merging sorts.

Vega-Lite unions the y domain of the bar and text layers; it warns "Domains that should be
unioned has conflicting sort properties" when their sorts differ, and drops a sort whose op is
not count, min or max (then the bars lose their order)."""

import pandas as pd

from minillm.charts.generate import candidate_bars


def table():
    rows = []
    for step, picked in ((1, "cat"), (2, "sat")):
        for rank, (word, p) in enumerate([(picked, 0.6), ("dog", 0.3), ("mat", 0.1)], start=1):
            rows.append({"step": step, "panel": f"step {step}: picked “{picked}”", "token_id": rank,
                         "label": word, "candidate": f"{rank}. {word}", "rank": rank,
                         "probability": p, "picked": rank == 1})
    return pd.DataFrame(rows)


def test_the_layers_share_one_sort_that_vega_lite_can_union():
    spec = candidate_bars(table()).to_dict()
    sorts = [layer["encoding"]["y"]["sort"] for layer in spec["spec"]["layer"]]
    assert len(sorts) == 2 and sorts[0] == sorts[1]
    assert sorts[0]["op"] in ("count", "min", "max") and sorts[0]["field"] == "rank"
    assert spec["facet"]["sort"]["op"] in ("count", "min", "max")
    assert spec["resolve"]["scale"]["y"] == "independent"  # each step its own candidates
