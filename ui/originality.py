"""Generate's "Creating or remembering" section: a batch of samples from the page's prompt,
each finished sentence looked up word for word in the training and the held-out lines and,
for generated stories, parsed by the grammar that made them (`minillm.inspect`).

The batch is written once per (model, epoch, prompt, sampling settings) and kept in the
session, so moving an unrelated widget costs nothing.
"""

from __future__ import annotations

import contextlib
from concurrent.futures.process import BrokenProcessPool

import streamlit as st

from minillm import inspect, workers
from minillm.stories import StoryGrammar

KEPT = "generate_batch"  # session state: (what the batch was written from, its Originality)


def judged_batch(experiment, prompt: str, temperature: float, top_k: int | None,
                 greedy: bool, seed: int) -> inspect.Originality:
    """The batch for these settings, from the session if it was written already."""
    key = (id(experiment), id(experiment.model), experiment.trainer.epoch, prompt,
           None if greedy else temperature, 1 if greedy else top_k, greedy, seed)
    kept = st.session_state.get(KEPT)
    if kept is not None and kept[0] == key:
        return kept[1]
    dataset = experiment.dataset
    settings = dict(n=1 if greedy else inspect.BATCH_SAMPLES,
                    max_new_tokens=inspect.batch_tokens(dataset),
                    temperature=1.0 if greedy else temperature, top_k=1 if greedy else top_k,
                    seed=seed)
    # With worker processes, the batch is drawn in one (the same samples): this one Python
    # serves every page of the class, and the batch is the heaviest part of this page.
    pool = workers.shared_pool() if experiment.trainer.device.type == "cpu" else None
    samples = None
    if pool is not None:
        with contextlib.suppress(BrokenProcessPool, OSError):  # no workers: drawn here instead
            samples = pool.sample_batch(experiment.model, dataset, prompt, **settings)
    if samples is None:
        samples = inspect.sample_batch(experiment.model, dataset, prompt, **settings)
    grammar = StoryGrammar(experiment.story_settings) if experiment.story_settings else None
    result = inspect.creating_or_remembering(samples, experiment.split.train,
                                             experiment.split.valid, grammar)
    st.session_state[KEPT] = (key, result)
    return result


def show_originality(experiment, prompt: str, temperature: float, top_k: int | None,
                     greedy: bool, seed: int) -> None:
    """The section: the headline, where the sentences were found, and the sentences."""
    unit = getattr(experiment.dataset.tokenizer, "unit", "token")
    n = 1 if greedy else inspect.BATCH_SAMPLES
    st.subheader(f"Creating or remembering: {n} sample{'s' if n > 1 else ''}, sentence by sentence")
    tokens = inspect.batch_tokens(experiment.dataset)
    st.caption(
        (f"{n} samples of up to {tokens} {unit}s from the same prompt, with the settings above "
         f"(seed {seed} for the batch). " if n > 1 else
         f"Greedy is on: every sample would be the same text, so there is one, of up to "
         f"{tokens} {unit}s. ")
        + "Each finished sentence is looked up word for word in the lines the model trained on "
        "and in the held-out lines, which it never saw.")
    result = judged_batch(experiment, prompt, temperature, top_k, greedy, seed)
    total = len(result.sentences)
    if not total:
        st.info(f"No finished sentence in {n} sample(s): a sentence ends with a full stop (or "
                "EOS), and this model wrote none before the limit. "
                + ("" if experiment.dataset.eos else "Without an EOS token a line never ends: "
                   "train with **EOS on**."), icon=":material/short_text:")
        return
    new = result.count(inspect.IN_NEITHER)
    if result.grammar:
        st.markdown(f"### {result.new_and_correct} of {total} sentences are new and correct")
    else:
        st.markdown(f"### {new} of {total} sentences are new")
    shown = [("In the training lines", result.share(inspect.IN_TRAINING)),
             ("In the held-out lines", result.share(inspect.IN_HELDOUT)),
             ("In neither: new", new / total)]
    if result.grammar:
        shown.append(("New and correct", result.new_and_correct / total))
    for col, (label, share) in zip(st.columns(len(shown)), shown):
        col.metric(label, f"{share:.0%}")
    notes = ["A sentence in the training lines may simply be remembered. One in the held-out "
             "lines was never shown to the model, yet it wrote it: it learned how such "
             "sentences go."]
    if not experiment.split.valid:
        notes.append(f"This model has no held-out lines ({experiment.valid_reason.rstrip('.')}), "
                     "so none can be found there.")
    if result.grammar:
        wrong = result.count(inspect.IN_NEITHER, False)
        notes.append(f"A new sentence is *correct* when the story grammar can make it, with the "
                     f"names and “she / he / they” of the story the sample tells. {wrong} new "
                     f"sentence{' is' if wrong == 1 else 's are'} not.")
    if result.unfinished:
        notes.append(f"{result.unfinished} sample(s) ended mid-sentence at the length limit: "
                     "that last piece is not counted.")
    st.markdown(" ".join(notes))
    st.dataframe(result.table(), hide_index=True, height=min(400, 38 + 35 * total))
