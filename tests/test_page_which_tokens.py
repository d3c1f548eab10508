"""AppTest of the Which tokens? page, and the server-wide job registry behind it.

`run_every` never fires under AppTest: a test presses Run, waits for the job through the
registry's API (`wait_idle`), then runs the page again, as the fragment's timer would.
"""

import dataclasses
import threading

import pytest

from conftest import run_app
from minillm import tournament as T
from minillm.stories import StorySettings
from ui import model_state
from ui import tournament_jobs as jobs

PAGE = "pages/which_tokens.py"
TINY = "\n".join(f"the {a} {v} the {b}" for a, v, b in [
    ("cat", "saw", "dog"), ("dog", "saw", "cat"), ("cat", "sat", "mat"), ("dog", "sat", "rug"),
    ("bird", "saw", "cat"), ("cat", "ate", "fish"), ("dog", "ate", "bone"), ("bird", "ate", "seed"),
    ("fox", "saw", "bird"), ("cat", "saw", "fox"), ("dog", "saw", "fox"), ("zebra", "saw", "dog"),
])  # 12 lines: 11 to train on, 1 held out (a zebra nobody trained on may be in it)
JOB_TIMEOUT = 600  # seconds: seven small models, on a busy 2-core machine


@pytest.fixture(autouse=True)
def in_process(monkeypatch):
    """Train in this process (no worker pool to start): the page's logic is what is tested."""
    monkeypatch.setenv("MINILLM_WORKERS", "0")


def open_page():
    at = run_app(PAGE)
    assert not at.exception, at.exception
    return at


def paste(at, text):
    at.selectbox(key="tok_corpus").select("Paste your own sentences").run()
    at.text_area(key="tok_text").input(text).run()
    assert not at.exception, at.exception
    return at


def texts(at, kind):
    return [element.value for element in getattr(at, kind)]


def test_the_page_opens_on_the_default_experiment_with_a_run_button():
    at = open_page()
    assert at.title[0].value == "Which tokens?"
    assert at.selectbox(key="tok_corpus").value.startswith("Generated stories")
    assert at.slider(key="tok_new_names").value == 30
    assert at.button(key="tok_run").label == "Run the experiment"
    assert any(c.startswith("About ") and "s of CPU" in c for c in texts(at, "caption"))
    rules = " ".join(texts(at, "markdown"))
    assert "renumbered to the tokens this text uses" in rules  # cl100k, said on the page
    assert "spelling the word out letter by letter" in rules


def test_a_tiny_corpus_runs_to_its_result_with_table_chart_and_verdict():
    at = paste(open_page(), TINY)
    at.radio(key="tok_budget").set_value("quick").run()
    at.button(key="tok_run").click().run()
    assert not at.exception, at.exception
    assert any("Training: one model after another" in i for i in texts(at, "info"))
    assert jobs.registry().wait_idle(JOB_TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert at.dataframe[0].proto.placeholder == "—"  # a number a model has not: a dash, not "None"
    done = [s for s in texts(at, "success") if s.startswith(f"Experiment done: {len(table)} models")]
    assert done, texts(at, "success")
    assert list(table["tokenizer"][:3]) == ["words", "characters", "bytes"]
    assert list(table["tokenizer"][-1:]) == ["cl100k_base"]
    bpes = [name for name in table["tokenizer"] if name.startswith("BPE-")]
    assert len(bpes) == 1  # so small a text allows fewer than 50 merges: one BPE, named so
    merges = bpes[0].removeprefix("BPE-")
    assert any(f"asked for 50\\, 200 and 1\\,000 merges\\: the training text allows only {merges}"
               in c for c in texts(at, "caption")), texts(at, "caption")
    verdict = next(m for m in texts(at, "markdown") if m.startswith("#### "))
    assert "bits per character" in verdict and "did best" in verdict or "words won" in verdict
    assert any("The fair score" in m and "letter by letter" in m for m in texts(at, "markdown"))
    assert at.get("vega_lite_chart"), "the chart of bits per character against vocabulary"
    notes = " ".join(texts(at, "caption"))
    assert "cl100k" in notes and "renumbered" in notes and "not 100" in notes
    assert "Run the experiment" not in [b.label for b in at.button]  # nothing left to run

    # Train a model with that BPE: it goes to Train as "your BPE", the same merges.
    at.button(key=f"tok_train_{merges}").click().run()
    assert not at.exception, at.exception
    handed = at.session_state["trained_bpe"]
    assert handed["name"] == "BPE from Which tokens?" and handed["merges"] == int(merges)
    assert any(title.value == "Train" for title in at.title), "Train opened"
    assert at.radio(key="train_tokenizer").value == "bpe"  # ... with that BPE chosen
    assert at.selectbox(key="train_corpus").value == "Paste your own sentences"
    assert at.text_area(key="train_text").value == TINY  # ... on the same lines

    # Any entrant: bytes goes to Train with its tokenizer, and trains on the same split.
    at.switch_page("pages/which_tokens.py").run()
    assert not at.exception, at.exception
    at.button(key="tok_train_bytes").click().run()
    assert not at.exception, at.exception
    assert at.radio(key="train_tokenizer").value == "bytes"
    at.switch_page("pages/train.py")  # AppTest's next runs stay on the page switched to
    at.run()
    assert not at.error, [e.value for e in at.error]  # the experiment's model fits, as there
    at.button(key="train_go").click().run()
    assert not at.exception, at.exception
    exp = at.session_state["experiment"]
    quick = T.with_budget(T.TournamentSettings(), "quick", "small")
    assert (exp.settings.tokenizer, exp.settings.loss_on, exp.settings.batch_size,
            exp.settings.epochs, exp.settings.d_model, exp.settings.eos) == (
        "bytes", "every", quick.batch_size, quick.steps, quick.d_model, True)
    corpus = jobs.text(tuple(TINY.splitlines()), "your sentences")
    assert exp.split.train == corpus.train and exp.split.valid == corpus.valid


def test_a_second_session_sees_the_first_ones_run_then_its_result_at_once():
    first = paste(open_page(), TINY)
    first.button(key="tok_run").click().run()
    started = jobs.registry().running()
    assert len(started) == 1
    second = paste(open_page(), TINY)  # another student, the same text and settings
    assert any("Training: one model after another" in i for i in texts(second, "info"))
    assert jobs.registry().running() == started  # the same job, not a second one
    assert jobs.registry().wait_idle(JOB_TIMEOUT)
    second.run()
    first.run()
    for at in (first, second):
        assert not at.exception, at.exception
        assert any(s.startswith("Experiment done") for s in texts(at, "success"))
    assert first.dataframe[0].value.equals(second.dataframe[0].value)
    third = paste(open_page(), TINY)  # later: the result at once, nothing trains
    assert any(s.startswith("Experiment done") for s in texts(third, "success"))
    assert jobs.registry().running() == []


@pytest.mark.parametrize("corpus, message", [
    ("Cats and dogs (the notebook)", "This corpus cannot be used: Only 6 lines: at least 10 "
                                     "are needed to hold some out"),
    ("Upload a text file (.txt)", "This corpus cannot be used: Upload a .txt file"),
])
def test_a_corpus_that_cannot_be_used_gets_a_clear_message(corpus, message):
    at = open_page()
    at.selectbox(key="tok_corpus").select(corpus).run()
    assert not at.exception, at.exception
    errors = texts(at, "error")
    assert any(e.startswith(message) for e in errors), errors
    assert not [b for b in at.button if b.key == "tok_run"]  # nothing to run


def test_pasted_text_that_is_empty_or_too_short_is_refused_in_words():
    at = paste(open_page(), "   \n\n ")
    assert any("The text is empty" in e for e in texts(at, "error"))
    at = paste(at, "one line\ntwo lines\nthree")
    assert any("Only 3 lines" in e and "at least 10 lines" in e for e in texts(at, "error"))


# ---- the registry --------------------------------------------------------------------------

SMALL = T.TournamentSettings(block_size=8, d_model=8, n_heads=2, steps=6, batch_size=4,
                             bpe_merges=(20,), cl100k=False)


def tiny_corpus(seed=0):
    return T.story_corpus(StorySettings(seed=seed), 120)


def test_a_job_takes_the_shared_training_slots_and_waits_its_turn():
    slots = model_state.FairSlots(1)
    registry = jobs.Registry(slots, max_jobs=2)
    assert slots.acquire()  # a Train chunk holds the only slot
    corpus = tiny_corpus()
    job = registry.start(jobs.job_key(corpus, SMALL), corpus, SMALL, owner="a")
    threading.Event().wait(0.5)
    assert job.waiting_for_slot and not job.done and job.share_done() == 0
    slots.release()
    assert job.wait(JOB_TIMEOUT)
    assert isinstance(registry.find(jobs.job_key(corpus, SMALL)), T.TournamentResult)
    assert slots.acquire()  # given back: free again
    slots.release()


def test_one_job_per_session_and_a_bounded_number_on_the_server():
    slots = model_state.FairSlots(1)
    registry = jobs.Registry(slots, max_jobs=2)
    assert slots.acquire()  # hold the jobs back while we ask for more
    try:
        a, b, c = (tiny_corpus(seed) for seed in (1, 2, 3))
        registry.start(jobs.job_key(a, SMALL), a, SMALL, owner="ann")
        with pytest.raises(jobs.Busy, match="Your other experiment is still training"):
            registry.start(jobs.job_key(b, SMALL), b, SMALL, owner="ann")
        same = registry.start(jobs.job_key(a, SMALL), a, SMALL, owner="bob")  # joins Ann's
        assert same is registry.find(jobs.job_key(a, SMALL))
        registry.start(jobs.job_key(b, SMALL), b, SMALL, owner="bob")
        with pytest.raises(jobs.Busy, match="training 2 experiments for others"):
            registry.start(jobs.job_key(c, SMALL), c, SMALL, owner="cy")
    finally:
        slots.release()
    assert registry.wait_idle(JOB_TIMEOUT)
    assert len(registry._results) == 2


def test_results_are_kept_within_their_bounds():
    registry = jobs.Registry(model_state.FairSlots(1), max_jobs=3, max_results=2)
    keys = []
    for seed in range(3):
        corpus = tiny_corpus(seed)
        keys.append(jobs.job_key(corpus, SMALL))
        registry.start(keys[-1], corpus, SMALL).wait(JOB_TIMEOUT)
    assert registry.find(keys[0]) is None  # the oldest went first
    assert all(isinstance(registry.find(k), T.TournamentResult) for k in keys[1:])
    assert sum(size for _, size in registry._results.values()) < 100_000  # a result is tiny


def test_a_job_in_the_worker_processes_gives_the_engines_numbers(monkeypatch):
    monkeypatch.setenv("MINILLM_WORKERS", "1")
    corpus = tiny_corpus(5)
    registry = jobs.Registry(model_state.FairSlots(1))
    job = registry.start(jobs.job_key(corpus, SMALL), corpus, SMALL)
    assert job.wait(JOB_TIMEOUT), "the worker pool never finished"
    expected = T.run_tournament(corpus.train, corpus.valid, SMALL)

    def numbers(result):
        return [(e.name, e.heldout_bits, e.train_loss, e.vocab_size) for e in result.entrants]

    assert numbers(job.result) == numbers(expected)


def test_a_failed_job_says_why_and_can_be_run_again():
    registry = jobs.Registry(model_state.FairSlots(1))
    corpus = dataclasses.replace(tiny_corpus(), valid=())
    key = jobs.job_key(corpus, SMALL)
    registry.start(key, corpus, SMALL).wait(JOB_TIMEOUT)
    failed = registry.find(key)
    assert isinstance(failed, jobs.Job) and failed.state == "failed"
    assert failed.error == "The tournament needs held-out lines to score the models on."
    again = registry.start(key, corpus, SMALL)
    assert again is not failed
    again.wait(JOB_TIMEOUT)


def test_compare_links_here_and_the_app_lists_the_page():
    at = run_app("pages/compare.py")
    assert not at.exception, at.exception
    links = [(link.label, link.page) for link in at.get("page_link")]
    assert any(page == "which_tokens" and label.startswith("What does this choice do to a model?")
               for label, page in links), links
