"""Looking inside a trained model: what it attends to, where it puts tokens, what it copies.

Everything the Generate and Attention pages show comes from here, so a notebook can
reproduce each figure:

    exp = Experiment(TrainSettings()); exp.trainer.run()
    labels, weights = attention_maps(exp.model, exp.dataset, exp.dataset.X[4].tolist())
    labels                        # ['the', 'cat', 'sat', 'on', 'the']
    weights.shape                 # (2, 5, 5): one (T, T) map per head
    weights.mean(axis=0)          # the notebook's `attn_weights[0]`: the head *average*

Reading an attention map: row i is position i asking "which tokens do I take my
information from?"; its entries are softmax weights, so each row sums to 1. The model's
guess for the next token is read at the last position, so the last row is the one that
matters for the notebook's objective. With the causal mask on, row i may only look at
positions 0..i: everything right of the diagonal is exactly 0.

No streamlit here: pages call these functions and draw what they return.
"""

from __future__ import annotations

import codecs
import copy
import math
import re
import string
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from minillm.data import Dataset
from minillm.display import readable
from minillm.model import MiniTransformer
from minillm.sample import Candidate, Generation, greedy_runs
from minillm.tokenizers import Tokenizer, WordTokenizer

if TYPE_CHECKING:  # only for type hints: Experiment imports tiktoken and the trainer
    from minillm.experiment import Experiment
    from minillm.stories import StoryGrammar

#: The prompts the notebook generates from (its last cells).
NOTEBOOK_PROMPTS = ("the cat", "the dog", "the cat chased", "the dog sat", "the mouse", "the mailman")
#: The notebook looks at attention for `X_train[4:5]`: "the cat sat on the" -> mat.
NOTEBOOK_WINDOW = 4
#: A prompt is a few words; longer text is cut here (the model sees only block_size anyway).
MAX_PROMPT_CHARS = 200
#: A run of at least this many tokens found word for word in one corpus sentence is "copied".
MIN_COPIED = 3

AVERAGE = "average of the heads"

# --------------------------------------------------------------------------------------------
# Tokens as text people can read


def display_label(dataset: Dataset, token_id: int) -> str:
    """A token as a short readable label: PAD / EOS by name, whitespace made visible, part of
    a character as its bytes (``⟨F0 9F⟩``).

    >>> from minillm.data import build_dataset
    >>> from minillm.tokenizers import CharTokenizer
    >>> ds = build_dataset(["a b"], CharTokenizer.fit(["a b"]), 3)
    >>> [display_label(ds, i) for i in range(ds.vocab_size)]
    ['␣', 'a', 'b', 'PAD']

    Two different tokens can still read the same (a corpus word "PAD" and the PAD token):
    tell tokens apart by their id.
    """
    if token_id in (dataset.pad_id, dataset.eos_id):
        return dataset.label(token_id)
    return readable(dataset.tokenizer.piece_bytes(token_id))


def _drop_control(text: str) -> tuple[str, int]:
    """Control characters (NUL, escape codes, ...) become spaces; returns (text, how many)."""
    out, dropped = [], 0
    for ch in text:
        if ch not in " \t\n" and unicodedata.category(ch) == "Cc":
            out.append(" ")
            dropped += 1
        else:
            out.append(ch)
    return "".join(out), dropped


@dataclass(frozen=True)
class Prompt:
    """A prompt made safe to use: the text, what was changed, and what is wrong with it."""

    text: str
    notes: tuple[str, ...] = ()  # what was cleaned up, in plain words
    problem: str | None = None  # why it cannot be used at all (empty)


def clean_prompt(text: str | None, max_chars: int = MAX_PROMPT_CHARS) -> Prompt:
    """Cut a prompt to `max_chars`, drop control characters, and refuse an empty one.

    >>> clean_prompt("the\\x00cat").text, clean_prompt("   ").problem is not None
    ('the cat', True)
    """
    text = text or ""
    notes = []
    if len(text) > max_chars:
        notes.append(f"The prompt had {len(text):,} characters: only the first {max_chars} were used.")
        text = text[:max_chars]
    text, dropped = _drop_control(text)
    if dropped:
        notes.append(f"{dropped} invisible control character(s) were replaced by spaces.")
    if not text.strip():
        return Prompt("", tuple(notes), "The prompt is empty. Type a word or two to start from, like “the cat”.")
    return Prompt(text, tuple(notes))


def near_misses(unknown: Sequence[str], tokenizer: Tokenizer) -> list[tuple[str, str]]:
    """(typed, known) for each unknown word that a word-level model knows in another case or
    without its punctuation: its words are split at spaces only (`WordTokenizer.rule`).

    >>> near_misses(["THE", "cat,", "zebra"], WordTokenizer.fit(["the cat sat"]))
    [('THE', 'the'), ('cat,', 'cat')]
    """
    if not isinstance(tokenizer, WordTokenizer):
        return []
    pairs = []
    for word in unknown:
        bare = word.strip(string.punctuation + "“”‘’")
        match = next((w for w in (word.lower(), bare, bare.lower()) if w in tokenizer.stoi), None)
        if match is not None:
            pairs.append((word, match))
    return pairs


def describe_unknown(unknown: Sequence[str], unit: str = "word", shown: int = 8,
                     tokenizer: Tokenizer | None = None) -> str:
    """Say which prompt parts the model has never seen, in one plain sentence; with the
    model's `tokenizer`, also why a word it knows in another form does not count.

    >>> describe_unknown(["zebra"])
    "The model has never seen the word 'zebra', so it was left out."
    >>> describe_unknown(["cat,"], tokenizer=WordTokenizer.fit(["the cat sat"]))[-98:]
    "punctuation stay part of a word, so 'cat,' is not 'cat'. Type the words as the corpus writes them."
    """
    if not unknown:
        return ""
    quoted = [repr(u) if len(u) <= 40 else repr(u[:40] + "…") for u in unknown[:shown]]
    more = f" and {len(unknown) - shown} more" if len(unknown) > shown else ""
    if len(unknown) == 1:
        message = f"The model has never seen the {unit} {quoted[0]}, so it was left out."
    else:
        listed = ", ".join(quoted[:-1]) + f" and {quoted[-1]}" if not more else ", ".join(quoted) + more
        message = f"The model has never seen the {unit}s {listed}, so they were left out."
    misses = near_misses(unknown, tokenizer) if tokenizer is not None else []
    if misses:
        why = " and ".join(f"{typed!r} is not {known!r}" for typed, known in misses[:3])
        message += (" Its words are split at spaces only, as in the notebook: capitals and "
                    f"punctuation stay part of a word, so {why}. Type the words as the corpus "
                    "writes them.")
    return message


def prompt_suggestions(dataset: Dataset, n: int = 6) -> list[str]:
    """Prompts to try: the notebook's when the corpus knows their words, else openings.

    For another corpus: the first two tokens of its sentences (more if the second ends inside
    a character), each opening once.
    """
    tokenizer = dataset.tokenizer
    if isinstance(tokenizer, WordTokenizer):
        known = [p for p in NOTEBOOK_PROMPTS if not tokenizer.encode_known(p).unknown]
        if len(known) == len(NOTEBOOK_PROMPTS):
            return list(NOTEBOOK_PROMPTS)
    openings = []
    for sentence in dataset.sentences:
        ids = [i for i in sentence if i != dataset.eos_id]
        length = 2  # and more while the opening ends inside a character (a byte-level emoji)
        while length < len(ids) and not _whole_characters(tokenizer, ids[:length]):
            length += 1
        text = tokenizer.decode(ids[:length]).strip()
        if text and text not in openings:
            openings.append(text)
            if len(openings) == n:
                break
    return openings


def _whole_characters(tokenizer: Tokenizer, ids: Sequence[int]) -> bool:
    try:
        b"".join(tokenizer.piece_bytes(i) for i in ids).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Attention


def window_ids(dataset: Dataset, context_ids: Sequence[int]) -> list[int]:
    """The window the model reads: the last block_size ids, left-padded with PAD.

    With block_size 5, the context [13, 3] ("the cat") becomes [PAD, PAD, PAD, 13, 3].
    """
    ids = [int(i) for i in context_ids][-dataset.block_size :] if dataset.block_size else []
    return [dataset.pad_id] * (dataset.block_size - len(ids)) + ids


def attention_maps(
    model: MiniTransformer, dataset: Dataset, context_ids: Sequence[int], layer: int = 0
) -> tuple[list[str], np.ndarray]:
    """Per-head attention for one window: (labels, weights of shape (n_heads, T, T)).

    The window is padded on the left like every window of the dataset. `weights[h, i, j]`
    is how much position i looks at position j in head h; each row sums to 1. The
    notebook's printed `attn_weights` is `weights.mean(axis=0)` (torch averages the heads by
    default), not the first head as its comment says.

    `layer` counts from 0 (the notebook's one layer). In a deeper model a later layer's
    positions hold what the layers below gathered, not the tokens alone: its rows say where
    that layer takes from, labelled by the token each position started as.
    """
    if not 0 <= layer < model.config.n_layers:
        raise ValueError(f"layer must be from 0 to {model.config.n_layers - 1}, not {layer}")
    window = window_ids(dataset, context_ids)
    model.eval()
    with torch.no_grad():
        attention = model.attention_maps(torch.tensor([window]))[layer]  # (1, n_heads, T, T)
    return [display_label(dataset, i) for i in window], attention[0].numpy()


def typed_context(dataset: Dataset, text: str) -> tuple[list[int], list[str]]:
    """Ids of the parts of `text` the vocabulary knows, and the parts it does not.

    All known ids are returned; the model reads only the last block_size of them.
    """
    encoded = dataset.tokenizer.encode_known(text)
    return list(encoded.ids), list(encoded.unknown)


@dataclass(frozen=True)
class WindowChoice:
    """One distinct context from the dataset, and the tokens that follow it there."""

    context: tuple[int, ...]
    label: str  # "the cat sat on the → mat"
    windows: tuple[int, ...]  # the rows of dataset.X with this context


def window_choices(dataset: Dataset, limit: int | None = None) -> list[WindowChoice]:
    """Each distinct context window once, in dataset order, labelled "context → next".

    A context followed by different tokens (PAD PAD PAD PAD the → cat / dog) is listed once
    with all of them: that ambiguity is why the loss cannot reach 0. With `limit`, only the
    first `limit` distinct contexts (a big corpus has tens of thousands).
    """
    rows: dict[tuple[int, ...], list[int]] = {}
    for n, x in enumerate(dataset.X.tolist()):
        windows = rows.get(key := tuple(x))
        if windows is None:
            if limit is not None and len(rows) >= limit:
                continue
            windows = rows[key] = []
        windows.append(n)
    ys = dataset.Y.tolist()
    choices = []
    for context, windows in rows.items():
        nexts = list(dict.fromkeys(display_label(dataset, ys[n]) for n in windows))
        text = " ".join(display_label(dataset, i) for i in context)
        choices.append(WindowChoice(context, f"{text} → {' / '.join(nexts)}", tuple(windows)))
    return choices


def notebook_choice(choices: Sequence[WindowChoice]) -> int:
    """Index of the choice holding the notebook's window (X_train[4]), else 0."""
    for n, choice in enumerate(choices):
        if NOTEBOOK_WINDOW in choice.windows:
            return n
    return 0


@dataclass(frozen=True, eq=False)
class Replay:
    """The weights a page can replay, read from the trainer once: one consistent view.

    A run may go on training (in another thread) while a page draws it: its epoch moves and
    `trainer.snapshots` is replaced by a new dict (old epochs thinned out). Everything here
    comes from one read of each, so an epoch listed in `epochs` always has its weights.
    """

    epochs: tuple[int, ...]  # in order; the last is the live model's epoch
    snapshots: Mapping[int, Mapping[str, torch.Tensor]]  # the kept weights, as read once
    live_epoch: int
    live_weights: Mapping[str, torch.Tensor]  # a copy of the live model's, taken with live_epoch
    template: MiniTransformer  # the live model: its configuration, never its weights

    def model(self, epoch: int) -> MiniTransformer:
        """A model with the weights it had after `epoch` training steps (0: freshly initialised).

        Always a copy: the live model (and its optimizer) are never touched.
        """
        if epoch == self.live_epoch:
            weights = self.live_weights
        elif epoch in self.snapshots:
            weights = self.snapshots[epoch]
        else:
            raise KeyError(f"no weights kept for epoch {epoch}; kept: {list(self.epochs)}")
        model = copy.deepcopy(self.template)
        model.load_state_dict(weights)
        return model


def replay(experiment: "Experiment") -> Replay:
    """Read what can be replayed once: the kept snapshots, and the live model as it is now.

    The snapshots dict is taken once (the trainer replaces it rather than changing it, so this
    reference stays as it was); the live weights are copied and then their epoch is read, with
    no other read in between.
    """
    trainer, model = experiment.trainer, experiment.model
    snapshots = trainer.snapshots
    live_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    live_epoch = trainer.epoch
    epochs = tuple(sorted(set(snapshots) | {live_epoch}))
    return Replay(epochs, snapshots, live_epoch, live_weights, model)


def replay_epochs(experiment: "Experiment") -> list[int]:
    """Epochs whose weights we can replay: the kept snapshots and the live model's epoch.

    To use these epochs, ask the same `replay(experiment)` for the weights: a second read
    of a run that is still training may no longer have them.
    """
    return list(replay(experiment).epochs)


def model_at(experiment: "Experiment", epoch: int) -> MiniTransformer:
    """The model as it was after `epoch` training steps (epoch 0: freshly initialised).

    A copy (see `Replay.model`); for several epochs of one run, use one `replay(experiment)`.
    """
    return replay(experiment).model(epoch)


def attention_at(
    experiment: "Experiment", epoch: int, context: Sequence[int], layer: int = 0
) -> tuple[list[str], np.ndarray]:
    """`attention_maps` for `context` with the weights the model had after `epoch` steps."""
    return attention_maps(model_at(experiment, epoch), experiment.dataset, context, layer)


def attention_table(labels: Sequence[str], weights: np.ndarray, causal: bool) -> pd.DataFrame:
    """Long table for the heatmaps: one row per (map, position, looked-at position).

    Maps are "head 1", "head 2", ... and the average of the heads. With the causal mask a
    cell right of the diagonal is `hidden` (its weight is exactly 0: never looked at).
    """
    weights = np.asarray(weights, dtype=float)
    n_heads, T, _ = weights.shape
    maps = [(f"head {h + 1}", weights[h]) for h in range(n_heads)] + [(AVERAGE, weights.mean(axis=0))]
    rows = []
    for order, (name, matrix) in enumerate(maps):
        for i in range(T):
            for j in range(T):
                hidden = causal and j > i
                rows.append({
                    "map": name, "map_order": order,
                    "position": i, "token": labels[i],
                    "looks_at": j, "looks_at_token": labels[j],
                    "weight": float(matrix[i, j]), "hidden": hidden,
                    "cell": "hidden" if hidden else f"{matrix[i, j]:.2f}",
                })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Embeddings


def map_ids(dataset: Dataset, limit: int = 150) -> list[int]:
    """Ids worth putting on the embedding map: the `limit` most frequent tokens of the corpus,
    plus PAD (and EOS). Ids that never occur keep their random start and only add clutter."""
    from collections import Counter

    counts = Counter(i for sentence in dataset.sentences for i in sentence if i != dataset.eos_id)
    ids = sorted(i for i, _ in counts.most_common(limit))
    return ids + [i for i in (dataset.pad_id, dataset.eos_id) if i is not None]


def embedding_map(model: MiniTransformer, dataset: Dataset, ids: Sequence[int] | None = None) -> pd.DataFrame:
    """A 2-D map of the token embedding table (PCA): which tokens the model puts together.

    Each token is a d_model-long row of `token_embed`. PCA finds the two directions along
    which those rows spread the most; we centre the rows and take the top two right singular
    vectors (SVD). Tokens the model uses alike end up close together. Two axes cannot hold
    everything: `df.attrs["explained"]` is the share of the spread each axis keeps.

    Columns: id, token, x, y, kind ("word"/"character"/"token", "PAD", "EOS"), seen (the id
    occurs in the corpus; a byte-level BPE has many ids that never do).
    """
    ids = list(range(dataset.vocab_size)) if ids is None else [int(i) for i in ids]
    table = model.token_embed.weight.detach()[ids].double()  # (n, d)
    centred = table - table.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    coords = (centred @ vh[:2].T).numpy() if len(s) else np.zeros((len(ids), 0))
    for k in range(coords.shape[1]):  # a fixed sign: the farthest token on the positive side
        if coords[np.argmax(np.abs(coords[:, k])), k] < 0:
            coords[:, k] *= -1
    coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))[:, :2]
    spread = float((s**2).sum())
    explained = [float(v**2) / spread if spread else 0.0 for v in s[:2]] + [0.0, 0.0]
    seen = {int(i) for sentence in dataset.sentences for i in sentence}
    unit = getattr(dataset.tokenizer, "unit", "token")
    kinds = {dataset.pad_id: "PAD", dataset.eos_id: "EOS"}
    df = pd.DataFrame({
        "id": ids,
        "token": [display_label(dataset, i) for i in ids],
        "x": coords[:, 0],
        "y": coords[:, 1],
        "kind": [kinds.get(i, unit) for i in ids],
        "seen": [i in seen or i in kinds for i in ids],
    })
    df.attrs["explained"] = tuple(explained[:2])
    return df


# --------------------------------------------------------------------------------------------
# Generation: creating or remembering?


def _generated_ids(generation: Generation, dataset: Dataset) -> tuple[list[int], int]:
    """(prompt ids the model read + ids it wrote, how many came from the prompt)."""
    prompt_ids = list(dataset.tokenizer.encode_known(generation.prompt).ids)
    stop = {dataset.eos_id, dataset.pad_id}
    new_ids = [step.token_id for step in generation.steps if step.token_id not in stop]
    return prompt_ids + new_ids, len(prompt_ids)


def _as_text(ids: Sequence[int]) -> str:
    """Ids as one character each (surrogates skipped, NUL kept free as a separator)."""
    return "".join(chr(i + 1 if i + 1 < 0xD800 else i + 0x801) for i in ids)


def copied_runs(generated: Sequence[int], sentences: Sequence[Sequence[int]], min_len: int = MIN_COPIED):
    """Exactly `minillm.sample.copied_spans`, fast on long sentences.

    `copied_spans` puts every run of every sentence in a set: cubic in a sentence's length
    (one 2,000-word line takes minutes). Here each sentence becomes a string, one character
    per id, the sentences are joined with NUL, and "is this run in some sentence?" is a
    substring search in C. Same greedy walk, same answer (tests compare both).

    >>> copied_runs([1, 2, 3, 9, 4], [[0, 1, 2, 3, 4]], min_len=2)
    [(0, 3)]
    """
    corpus = "\x00".join(_as_text(s) for s in sentences)
    text = _as_text(generated)
    return greedy_runs(len(text), lambda i, j: text[i:j] in corpus, min_len)


def _kept_spans(generation: Generation, dataset: Dataset, min_len: int):
    """(ids, copied spans the model wrote at least part of, how many ids are the prompt's)."""
    ids, n_prompt = _generated_ids(generation, dataset)
    spans = [(a, b) for a, b in copied_runs(ids, dataset.sentences, min_len) if b > n_prompt]
    return ids, spans, n_prompt


def decoded_spans(tokenizer: Tokenizer, ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """`ids` decoded once, and the (start, end) characters of that text each token accounts for.

    Decoding token by token would show a character cut between tokens (an emoji is 4 bytes,
    a byte-level BPE may split it) as "\ufffd\ufffd". Here the bytes are read in one pass and
    a character belongs to the token holding its last byte: the tokens before it get an empty
    span, and the emoji shows whole. A word-level vocabulary joins its words with a space,
    which then lies between two spans.

    >>> from minillm.tokenizers import ByteTokenizer
    >>> decoded_spans(ByteTokenizer(), list("a🐱".encode()))
    ('a🐱', [(0, 1), (1, 1), (1, 1), (1, 1), (1, 2)])
    """
    text = tokenizer.decode(ids)
    separator = getattr(tokenizer, "separator", "")
    spans, parts, pos = [], [], 0
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for n, token_id in enumerate(ids):
        if separator:
            part = tokenizer.piece(token_id)
            if n:
                parts.append(separator)
                pos += len(separator)
        else:
            part = decoder.decode(tokenizer.piece_bytes(token_id), final=n == len(ids) - 1)
        spans.append((pos, pos + len(part)))
        parts.append(part)
        pos += len(part)
    if "".join(parts) != text:  # a tokenizer that decodes otherwise: the spans would be wrong
        raise ValueError(f"{tokenizer!r} does not decode to its pieces joined")
    return text, spans


def marked_generation(generation: Generation, dataset: Dataset, min_len: int = MIN_COPIED) -> list[tuple[str, bool]]:
    """The output (prompt as the model read it + what it wrote) cut into (text, copied) parts.

    `copied` is True for a run of at least `min_len` tokens that appears word for word in one
    corpus sentence and that the model wrote at least part of (`copied_spans`, computed by
    `copied_runs`); a prompt
    alone is never "copied". Two copied runs in a row stay two parts ("the cat sat on the
    mat" + "slept on the mat": each is in the corpus, the pair is not). Joined, the texts give
    the whole output, decoded once (`decoded_spans`): a character split between tokens shows
    whole, in the part holding its last byte. Word-level: single spaces between parts, as
    `(" ", False)`.

    With the notebook's corpus, "the cat sat on the mat" is one copied part: the model is
    remembering. "the cat sat on the rug" is nowhere in the corpus: the model combined two
    sentences it knows.
    """
    ids, spans, _ = _kept_spans(generation, dataset, min_len)
    text, where = decoded_spans(dataset.tokenizer, ids)
    cuts = sorted({0, len(ids), *(i for span in spans for i in span)})
    starts = {a for a, _ in spans}
    segments: list[tuple[str, bool]] = []
    done = 0  # characters of `text` already in a segment
    for a, b in zip(cuts, cuts[1:]):
        start, end = where[a][0], where[b - 1][1]
        if start > done:  # the separator between two words
            segments.append((text[done:start], False))
        if end > start:  # empty when these tokens hold only the first bytes of a character
            segments.append((text[start:end], a in starts))
        done = max(done, end)
    return segments


def copied_count(generation: Generation, dataset: Dataset, min_len: int = MIN_COPIED) -> tuple[int, int]:
    """(how many of the tokens the model wrote sit in copied runs, how many it wrote)."""
    ids, spans, n_prompt = _kept_spans(generation, dataset, min_len)
    copied = sum(b - max(a, n_prompt) for a, b in spans)
    return copied, len(ids) - n_prompt


def candidates_table(generation: Generation, dataset: Dataset) -> pd.DataFrame:
    """One row per (step, candidate): the probabilities the model gave, and what it picked.

    These are the probabilities it sampled from: after temperature and top-k. A candidate is
    its `token_id`; `label` is how it reads (`display_label`), and `candidate` is that label
    made unique within its step, for the chart's axis: two tokens that read the same get
    their ids added ("x (id 7)", "x (id 9)").
    """
    rows = []
    for n, step in enumerate(generation.steps, start=1):
        candidates = list(step.candidates)
        if step.token_id not in [c.token_id for c in candidates]:  # sampled from the long tail
            candidates.append(Candidate(step.token_id, step.probability))
        labels = [display_label(dataset, c.token_id) for c in candidates]
        names = _distinct_names(labels, [c.token_id for c in candidates])
        panel = f"step {n}: picked “{display_label(dataset, step.token_id)}”"
        for rank, (candidate, label, name) in enumerate(zip(candidates, labels, names), start=1):
            rows.append({
                "step": n, "panel": panel, "token_id": candidate.token_id, "candidate": name,
                "label": label, "rank": rank, "probability": candidate.probability,
                "picked": candidate.token_id == step.token_id,
            })
    return pd.DataFrame(rows, columns=["step", "panel", "token_id", "candidate", "label", "rank",
                                       "probability", "picked"])


def _distinct_names(labels: Sequence[str], ids: Sequence[int]) -> list[str]:
    """`labels`, with the id added to each one that repeats (ids are distinct).

    >>> _distinct_names(["a", "⟨F0⟩", "⟨F0⟩"], [1, 240, 241])
    ['a', '⟨F0⟩ (id 240)', '⟨F0⟩ (id 241)']
    """
    repeated = {label for label in labels if labels.count(label) > 1}
    names: list[str] = []
    for label, token_id in zip(labels, ids):
        name = f"{label} (id {token_id})" if label in repeated else label
        while name in names:  # a token that reads like another one's "x (id 7)"
            name += "\u200b"
        names.append(name)
    return names


# --------------------------------------------------------------------------------------------
# Creating or remembering, measured: whole sentences of many samples


#: Samples in one batch: enough for a share to mean something, few enough to write at once.
BATCH_SAMPLES = 20
#: New tokens per sample: a few sentences, in words or in characters (other tokenizers: between).
BATCH_TOKENS = {"word": 40, "character": 160}
BATCH_TOKENS_OTHER = 80
#: Where a generated sentence was found, word for word.
IN_TRAINING, IN_HELDOUT, IN_NEITHER = "training lines", "held-out lines", "neither"

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


@dataclass(frozen=True)
class Sample:
    """One sample of a batch: the text as the model read and wrote it, and why it stopped."""

    text: str  # the prompt's known tokens and what the model wrote, decoded together
    prompt_chars: int  # how much of `text` is the prompt (its sentences are not the model's)
    stopped: str  # "eos", "pad" or "length"


def batch_tokens(dataset: Dataset) -> int:
    """New tokens per sample for this tokenizer (`BATCH_TOKENS`)."""
    return BATCH_TOKENS.get(getattr(dataset.tokenizer, "unit", ""), BATCH_TOKENS_OTHER)


def sample_batch(
    model: MiniTransformer,
    dataset: Dataset,
    prompt: str,
    n: int = BATCH_SAMPLES,
    max_new_tokens: int = 40,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> list[Sample]:
    """`n` samples from the same prompt, drawn side by side: one forward pass per step for all.

    The same sampling as `minillm.sample.generate` (temperature, then top-k, then a draw by
    probability; a sample ends at EOS or PAD), with one generator for the whole batch: the
    same seed gives the same batch, but sample i is not `generate(..., seed=i)`. With
    ``top_k=1`` every sample is the greedy text. The drawing is `draw_batch` (tokens in,
    tokens out: what a worker process can do, `minillm.workers.ChunkPool.sample_batch`).
    """
    prompt_ids = batch_prompt_ids(dataset, prompt)
    new_ids, stopped = draw_batch(model, prompt_ids, dataset.block_size, dataset.pad_id,
                                  dataset.eos_id, n, max_new_tokens, temperature, top_k, seed)
    return batch_samples(dataset, prompt_ids, new_ids, stopped)


def check_batch_settings(n: int, max_new_tokens: int, temperature: float,
                         top_k: int | None) -> None:
    """A ValueError for settings no batch can be drawn with."""
    if n < 1 or max_new_tokens < 0:
        raise ValueError("a batch needs at least one sample and max_new_tokens >= 0")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError("temperature must be above 0")
    if top_k is not None and top_k < 1:
        raise ValueError("top-k must be at least 1")


def batch_prompt_ids(dataset: Dataset, prompt: str) -> list[int]:
    """The prompt's known tokens, as the batch starts from them."""
    return [int(i) for i in dataset.tokenizer.encode_known(prompt).ids]


def draw_batch(model: MiniTransformer, prompt_ids: Sequence[int], block_size: int, pad_id: int,
               eos_id: int | None, n: int, max_new_tokens: int, temperature: float,
               top_k: int | None, seed: int) -> tuple[list[list[int]], list[str]]:
    """`sample_batch`'s drawing: each sample's new token ids, and why it stopped."""
    check_batch_settings(n, max_new_tokens, temperature, top_k)
    T = block_size
    generator = torch.Generator().manual_seed(seed)
    rows = torch.full((n, T + len(prompt_ids)), pad_id, dtype=torch.long)
    if prompt_ids:
        rows[:, T:] = torch.tensor(list(prompt_ids))
    new_ids: list[list[int]] = [[] for _ in range(n)]
    stopped = ["length"] * n
    stops = {eos_id: "eos", pad_id: "pad"}
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            live = [r for r in range(n) if stopped[r] == "length"]
            if not live:
                break
            logits = model.last_logits(rows[live, -T:])  # (live, V): PAD on the left, as trained
            probs = F.softmax(logits / temperature, dim=-1)
            if top_k is not None and top_k < probs.shape[1]:
                kth = torch.topk(probs, top_k, dim=1).values[:, -1:]
                probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
                probs = probs / probs.sum(dim=1, keepdim=True)
            drawn = torch.multinomial(probs, 1, generator=generator)[:, 0].tolist()
            column = torch.full((n, 1), pad_id, dtype=torch.long)  # finished: never read
            for r, token_id in zip(live, drawn):
                if token_id in stops:
                    stopped[r] = stops[token_id]
                else:
                    new_ids[r].append(token_id)
                    column[r, 0] = token_id
            rows = torch.cat([rows, column], dim=1)
    return new_ids, stopped


def batch_samples(dataset: Dataset, prompt_ids: Sequence[int], new_ids: Sequence[Sequence[int]],
                  stopped: Sequence[str]) -> list[Sample]:
    """The drawn token ids as texts, each with its prompt (decoded together, as read)."""
    tokenizer, prompt_ids = dataset.tokenizer, list(prompt_ids)
    prompt_text = tokenizer.decode(prompt_ids)
    return [Sample(tokenizer.decode(prompt_ids + list(ids)), len(prompt_text), stop)
            for ids, stop in zip(new_ids, stopped)]


def sentences_in(text: str) -> tuple[list[tuple[int, int]], int]:
    """Where the finished sentences of `text` are: ([(start, end), ...], start of the rest).

    A sentence ends with ".", "!" or "?" followed by a space or the end of the text; the rest
    after the last one is unfinished (it may be empty).

    >>> text = "she went to the park . she was"
    >>> spans, rest = sentences_in(text)
    >>> [text[a:b] for a, b in spans], text[rest:]
    (['she went to the park .'], ' she was')
    """
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    return spans, start


def _normal(sentence: str) -> str:
    return " ".join(sentence.split())


def line_sentences(lines: Sequence[str]) -> set[str]:
    """Every sentence of `lines`, spaces normalised: a line's end ends a sentence too.

    >>> sorted(line_sentences(["mira went home . she was happy .", "the cat sat"]))
    ['mira went home .', 'she was happy .', 'the cat sat']
    """
    out = set()
    for line in lines:
        spans, rest = sentences_in(line)
        out.update(_normal(line[a:b]) for a, b in spans)
        if line[rest:].strip():
            out.add(_normal(line[rest:]))
    return out


@dataclass(frozen=True)
class JudgedSentence:
    """One finished sentence the model wrote: where it was found, and whether it is correct."""

    text: str
    found: str  # IN_TRAINING, IN_HELDOUT or IN_NEITHER
    valid: bool | None  # a sentence of the grammar; None when no grammar made the text


@dataclass(frozen=True)
class Originality:
    """What a batch of samples wrote: its finished sentences, judged."""

    sentences: tuple[JudgedSentence, ...]
    samples: int
    unfinished: int  # samples whose last sentence the length limit cut off (not judged)
    grammar: bool  # whether correctness was judged (generated stories)

    def count(self, found: str | None = None, valid: bool | None = None) -> int:
        return sum(1 for s in self.sentences if (found is None or s.found == found)
                   and (valid is None or s.valid == valid))

    def share(self, found: str) -> float:
        return self.count(found) / len(self.sentences) if self.sentences else 0.0

    @property
    def new_and_correct(self) -> int:
        """Sentences found in neither part and parsed by the grammar: created, not remembered."""
        return self.count(IN_NEITHER, True)

    def table(self) -> pd.DataFrame:
        """One row per sentence, for a page to list (text as data, never as Markdown)."""
        return pd.DataFrame({
            "sentence": [s.text for s in self.sentences],
            "found in": [s.found for s in self.sentences],
            **({"a sentence of the grammar": [s.valid for s in self.sentences]}
               if self.grammar else {}),
        })


def creating_or_remembering(
    samples: Sequence[Sample],
    train_lines: Sequence[str],
    heldout_lines: Sequence[str] = (),
    grammar: "StoryGrammar | None" = None,
) -> Originality:
    """Judge each finished sentence the model wrote in `samples`.

    A sentence is found in the training lines, else in the held-out lines (text the model
    never trained on), else in neither: compared whole, word for word (spaces normalised).
    A sentence in both parts counts as training: the model may have remembered it. With the
    `grammar` that made the text (generated stories), each sentence is also parsed, in the
    story the sample tells (`_story_check`). Sentences that lie wholly
    in the prompt are the prompt's, not the model's; the last piece of a sample the length
    limit cut off is not a finished sentence (at EOS it is: the model ended the line there).
    """
    seen, held_out = line_sentences(train_lines), line_sentences(heldout_lines)
    judged, unfinished = [], 0
    for sample in samples:
        spans, rest = sentences_in(sample.text)
        if sample.stopped == "eos" and sample.text[rest:].strip():
            spans.append((rest, len(sample.text)))
        elif sample.text[rest:].strip() and len(sample.text) > sample.prompt_chars:
            unfinished += 1
        sentences = [_normal(sample.text[a:b]) for a, b in spans]
        valid = _story_check(grammar, sentences) if grammar is not None else [None] * len(spans)
        for (a, b), sentence, ok in zip(spans, sentences, valid):
            if b <= sample.prompt_chars:  # the prompt's own sentence: it only sets the story
                continue
            found = (IN_TRAINING if sentence in seen else
                     IN_HELDOUT if sentence in held_out else IN_NEITHER)
            judged.append(JudgedSentence(sentence, found, ok))
    return Originality(tuple(judged), len(samples), unfinished, grammar is not None)


def _story_check(grammar: "StoryGrammar", sentences: Sequence[str]) -> list[bool]:
    """Whether each sentence of one sample is correct, in order.

    Once the sample has shown a story's first sentence, a later sentence must fit that story
    (`StoryGrammar.parse` after it: the cast's names, "she" for a girl, "were" for two
    friends, a story of at least two sentences). One that does not fit is wrong and leaves the
    story as it was. Before any first sentence (a prompt from the middle of a story) the story
    is unknown: a sentence is then judged alone (`StoryGrammar.is_sentence`).
    """
    from minillm.stories import StoryState

    state, out = None, []
    for sentence in sentences:
        derivation = grammar.parse(sentence, state) if state is not None else None
        if derivation is None and state is None:  # story unknown: a first sentence starts one
            derivation = grammar.parse(sentence, StoryState())
            out.append(derivation is not None or grammar.is_sentence(sentence))
        else:
            out.append(derivation is not None)
        if derivation is not None:
            state = derivation.after
    return out


def first_sentence_tokens(lines: Sequence[str], tokenizer: Tokenizer, limit: int = 200) -> int | None:
    """The fewest tokens a line's first sentence has (over the first `limit` lines), or None.

    For stories that is the sentence that names the cast ("once there was a girl named
    mira ."): a window shorter than it has lost the name and "girl" by the next sentence,
    so the model cannot know whether to write "she", "he" or "they".
    """
    lengths = []
    for line in lines[:limit]:
        spans, _ = sentences_in(line)
        if spans:
            a, b = spans[0]
            lengths.append(len(tokenizer.encode_known(line[a:b]).ids))
    return min(lengths) if lengths else None
