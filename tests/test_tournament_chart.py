"""minillm.charts.tournament: the figure of bits per character against vocabulary size."""

import json

from minillm import tournament as T
from minillm.charts.tournament import bits_chart, label_places, results_frame


def result(floor=0.386):
    def row(name, kind, vocab, bits, share=0.0, paid=0.0):
        return T.EntrantResult(name, vocab, 2 * vocab * 32 + vocab, 15_000 + 65 * vocab, 0.25,
                               128.0, 2.0, bits, share, paid, kind=kind)

    return T.TournamentResult(T.TournamentSettings(), [
        row("words", "words", 390, 0.733, 0.035, 0.333), row("characters", "characters", 29, 1.491),
        row("bytes", "bytes", 258, 1.541), row("BPE-50", "bpe", 308, 0.833),
        row("BPE-200", "bpe", 458, 0.655), row("BPE-1000", "bpe", 1258, 0.814),
        row("cl100k_base", "cl100k_base", 631, 0.680)], 17_150, floor, 26)


def sizes(node, found):
    """Every font size anywhere in a Vega-Lite spec."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.lower().endswith("fontsize") and isinstance(value, (int, float)):
                found.append(value)
            sizes(value, found)
    elif isinstance(node, list):
        for value in node:
            sizes(value, found)
    return found


def test_the_frame_has_a_row_per_entrant_and_unknowns_only_where_they_can_be():
    frame = results_frame(result())
    assert list(frame["tokenizer"]) == ["words", "characters", "bytes", "BPE-50", "BPE-200",
                                        "BPE-1000", "cl100k_base"]
    assert frame["unknown words"][0] == 0.035 and frame["unknown words"][1] == 0.0
    assert frame["unknown words"][2:].isna().all()  # bytes and pieces: nothing can be unknown


def test_the_chart_has_points_names_hover_and_the_floor_all_readable():
    spec = bits_chart(results_frame(result())).to_dict()
    floored = bits_chart(results_frame(result()), floor_bits=0.386).to_dict()
    assert len(floored["layer"]) == len(spec["layer"]) + 2  # the dashed rule and its label
    assert all(size >= 14 for size in sizes(floored, [])), sizes(floored, [])
    tooltips = [t["title"] for t in floored["layer"][0]["encoding"]["tooltip"]]
    assert "Parameters" in tooltips and "Embedding parameters" in tooltips
    assert floored["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"
    text = json.dumps(floored)
    assert "held-out floor: 0.386" in text


def test_no_corpus_text_goes_into_the_chart():
    corpus = T.story_corpus(T.DEFAULT_STORIES, 200)
    spec = json.dumps(bits_chart(results_frame(result()), floor_bits=0.3).to_dict())
    assert not any(line in spec for line in (*corpus.train, *corpus.valid))
    assert "mira" not in spec and "once there was" not in spec


def test_close_points_get_their_names_on_different_sides():
    frame = results_frame(result())
    places = dict(zip(frame["tokenizer"], label_places(frame, 0.33, 1.73)))
    assert places["BPE-1000"].endswith("left")  # at the right edge
    assert len(set(places.values())) >= 2
