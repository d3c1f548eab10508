"""GPT-style training: the engine against a textbook PyTorch loop and against the matmuls alone.

    python bench/gpt_speed.py [--steps 1500] [--short-steps 200]
    python bench/gpt_speed.py --windows 64 128   # the engine alone, held-out per block size

Everything runs in this process, on the same data, from the same initial weights, on the same
seeded batches, with the same learning rate at every step:

- **data**: about 300 kB of generated stories (`minillm.stories`, seed 0), one line per story
  (`by_story`, so a window can reach back to the sentence that names the cast), 10% of the
  stories held out (split seed 0). Characters, with EOS standing for the newline that ends a
  story, left-padded windows of 64 (`minillm.data.build_dataset`), every position scored.
- **model**: 2 layers, d_model 64, 4 heads, block 64, causal mask; batch 32.
- **the recipe**, the same for both loops: AdamW with betas (0.9, 0.95) and weight decay 0.1
  on every weight, the learning rate rising linearly to its peak, then a cosine down to 0.
- **the textbook loop**: the notebook's architecture stacked (`nn.MultiheadAttention` with a
  causal mask, called as the notebook calls it, ReLU feed-forward, LayerNorms, the residuals),
  autograd, `torch.optim.AdamW`, `LambdaLR` for the schedule, `F.cross_entropy` on every
  position; the batches drawn as the Trainer draws them.
- **the engine**: `minillm.train.Trainer` with ``batch_size`` and ``lr_schedule``; it takes the
  GPT fast path (`minillm.fastpath.EveryPositionGrads`), tested equal to the plain loop. Its
  linear layers' products go through oneDNN when torch has it (`minillm.products`); the
  textbook loop's, like every ``nn.Linear``'s, through MKL.
- **the matmul limit**: the linear layers' matrix products of one step and nothing else:
  forward x W^T, backward dY W and dY^T x, for every position of the batch (the four linear
  layers of each block and the LM head), timed through both libraries (MKL into
  preallocated tensors, and oneDNN as the engine calls it); the limit is the faster of the
  two. No training loop of this model can be faster while it does those products on every
  position.
- **held-out score**: every held-out character predicted once, from the window that ends
  just before it (its full context, up to 64 characters of its story); bits per character
  over the held-out stories' characters, newlines included, against the grammar's own
  entropy of the same stories (`Stories.sentence_nats`: no model can do better on average).

Timing: the machine may be shared, so the two loops and the matmuls run in alternating
chunks (noise hits all three alike) and each figure is given twice: by thread CPU time (what
one thread of work costs, less sensitive to other processes) and by the wall clock. One torch
thread for the main figures; two threads in a shorter run (wall clock and the process's CPU
time, which counts both threads).

Goals (issue "Does it write a new line?"): the engine at least 1.5x the textbook loop at the
same held-out loss (within 0.02 nats), moonshot half the matmul limit; held-out bits per
character within 1.2x the entropy after 1,500 steps of batch 32. Nothing here asserts: it
prints, and its last line sums it up (one thread, CPU time).

``--windows`` asks what holds the held-out score back: the engine alone, the same recipe,
steps and held-out stories, once per block size given, each scored against the same entropy
and against the floor for its window (`window_floor`: a story names its cast in its first
sentence and later sentences must agree with it, so a window that no longer reaches that
sentence may not know the names), with the excess over the grammar by kind of sentence
(`excess_by_sentence`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from minillm.data import IGNORE, build_dataset  # noqa: E402
from minillm.fastpath import SharedRows  # noqa: E402
from minillm.heldout import characters_in, split_lines  # noqa: E402
from minillm.model import ModelConfig, build_model  # noqa: E402
from minillm.products import Products  # noqa: E402
from minillm.stories import (AGREEMENT, StoryGrammar, StorySettings, generate_stories,  # noqa: E402
                             story_rules)
from minillm.tokenizers import CharTokenizer  # noqa: E402
from minillm.train import Trainer, torch_threads  # noqa: E402


@dataclass(frozen=True)
class Settings:
    characters: int = 300_000  # at least this much text (whole stories)
    block_size: int = 64
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    batch_size: int = 32
    steps: int = 1_500
    lr: float = 1.5e-2  # the peak learning rate (the best held-out of a sweep: README)
    warmup: int = 100  # steps rising linearly to the peak
    final_share: float = 0.0  # then a cosine down to this share of the peak at the last step
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW's: a shorter memory of squared gradients
    weight_decay: float = 0.1  # AdamW's decoupled decay, on every weight
    init: str = "small"  # "small" (GPT-2's recipe, see `small_init`) or "notebook"
    seed: int = 0  # the model's weights and the batches


# ---- data -----------------------------------------------------------------------------------


@dataclass
class Data:
    train: object  # minillm.data.Dataset
    valid: object
    valid_characters: int
    entropy_bits: float  # the grammar's bits per character on the held-out stories
    stories: int
    characters: int
    window_bits: float  # a floor for any model with this block size (`window_floor`)
    valid_sentences: list  # each held-out story's sentences, with the grammar's nats of each


def make_data(s: Settings) -> Data:
    stories = generate_stories(StorySettings(seed=0), 12_000)
    lines, nats = stories.by_story()
    n, total = 0, 0
    while total < s.characters:  # whole stories until there is enough text
        total += len(lines[n]) + 1
        n += 1
    lines, nats = lines[:n], nats[:n]
    split = split_lines(lines, 0.1, seed=0)
    tokenizer = CharTokenizer.fit(lines)
    train = build_dataset(split.train, tokenizer, s.block_size, eos=True)
    valid = build_dataset(split.valid, tokenizer, s.block_size, eos=True)
    chars = characters_in(split.valid)
    valid_nats = [nats[i] for i in split.valid_positions]
    entropy = math.fsum(valid_nats) / chars / math.log(2)
    window = window_floor(split.valid, valid_nats, StorySettings(seed=0), s.block_size)
    bounds = list(stories.story_starts) + [len(stories.lines)]
    sentences = [list(zip(stories.lines[bounds[i]:bounds[i + 1]],
                          stories.sentence_nats[bounds[i]:bounds[i + 1]]))
                 for i in split.valid_positions]
    return Data(train, valid, chars, entropy, n, total, window / chars / math.log(2), sentences)


def _cast_words(story: str) -> list[tuple[int, int, frozenset, tuple | None]]:
    """Each word of a story line that depends on its cast: (start, end, the kinds of cast it
    allows, the names it says or None). The first sentence says it all."""
    pronouns = {word: kind for kind, words in AGREEMENT.items() for word in words.values()}
    single = frozenset({"girl", "boy"})
    words, starts, at = story.split(" "), [], 0
    for word in words:
        starts.append(at)
        at += len(word) + 1
    found, i = [], 0
    while i < len(words):
        j = words.index(".", i)
        w, at = words[i:j], starts[i:j]
        if not found:  # "once there was a girl named mira" / "... were two friends named a and b"
            friends = w[2] == "were"
            names = (w[6], w[8]) if friends else (w[6],)
            kind = frozenset({"friends" if friends else w[4]})
            found.append((at[0], starts[j], kind, names))
        else:
            if len(w) > 2 and w[1] == "and":  # the subject: two names, one, or a pronoun
                found.append((at[0], at[2] + len(w[2]), frozenset({"friends"}), (w[0], w[2])))
                k = 3
            elif w[0] in pronouns and w[0] not in ("was", "were"):
                found.append((at[0], at[0] + len(w[0]), frozenset({pronouns[w[0]]}), None))
                k = 1
            else:
                found.append((at[0], at[0] + len(w[0]), single, (w[0],)))
                k = 1
            for m in range(k, len(w)):
                if m == k and w[m] in ("was", "were"):
                    kinds = single if w[m] == "was" else frozenset({"friends"})
                    found.append((at[m], at[m] + len(w[m]), kinds, None))
                elif m > k and w[m] in pronouns:  # her, his, their
                    found.append((at[m], at[m] + len(w[m]), frozenset({pronouns[w[m]]}), None))
        i = j + 1
    return found


def window_floor(stories, nats, settings: StorySettings, window: int) -> float:
    """Nats below which no model that reads `window` characters back can go on average.

    A lower bound: a predictor better informed than any such model. It is told every choice
    the grammar made except who the cast is (so it pays the grammar's nats, `nats`, for all
    of them), and it sees in full every word of the cast (a name, a pronoun, "was") that
    reaches into the `window` characters before the word it predicts. Each later word of the
    cast it then predicts from those words alone, with the grammar's chances (a girl, a boy
    or two friends; each name's chance): that costs nothing when the window shows who it is,
    and up to a brand-new name's spelling when it shows nothing.
    """
    kinds = {a.tag: a.chance for a in story_rules(settings)["INTRO"]}
    grammar = StoryGrammar(settings)
    extra = 0.0
    for story in stories:
        found = _cast_words(story)
        for i, (start, _, allows, names) in enumerate(found[1:], 1):
            possible, seen = set(kinds), None
            for _, end, allows_then, names_then in found[:i]:
                if end > start - window:  # reaches into the window
                    possible &= allows_then
                    seen = names_then if names_then is not None else seen
            p = math.fsum(kinds[k] for k in possible & allows) / math.fsum(kinds[k] for k in possible)
            if names is not None and seen is None:  # names it has not seen: the grammar's chance
                first = grammar.name_chance(names[0])
                p *= first if len(names) == 1 else first * grammar.name_chance(names[1]) / (1 - first)
            extra -= math.log(p)
    return math.fsum(nats) + extra


# ---- the model's starting weights ---------------------------------------------------------------


def small_init(model: nn.Module, n_layers: int, generator: torch.Generator) -> None:
    """GPT-2's initialisation: every weight normal(0, 0.02), biases 0, and the two projections
    that write into the residual stream (attention output, second feed-forward layer) scaled
    down by sqrt(2 x layers), so the stream does not grow with depth. LayerNorms stay 1 and 0."""
    residual = {id(m.attn.out_proj.weight) for m in model.blocks()}
    residual |= {id(m.ff[2].weight) for m in model.blocks()}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln" in f".{name}":
                continue
            std = 0.02 / math.sqrt(2 * n_layers) if id(p) in residual else 0.02
            p.normal_(0.0, std, generator=generator)
        for name, p in model.named_parameters():
            if name.endswith("bias") and "ln" not in name:
                p.zero_()


def engine_model(s: Settings, vocab_size: int):
    config = ModelConfig(vocab_size=vocab_size, block_size=s.block_size, d_model=s.d_model,
                         n_heads=s.n_heads, causal=True, loss_on="every", n_layers=s.n_layers)
    model = build_model(config, seed=s.seed)
    if s.init == "small":
        small_init(model, s.n_layers, torch.Generator().manual_seed(s.seed))
    return model


def schedule(s: Settings):
    """The learning rate of step k (0 for the first), as a share of the peak."""

    def share(step: int) -> float:
        warm = min(1.0, (step + 1) / s.warmup) if s.warmup else 1.0
        progress = min(1.0, step / max(1, s.steps - 1))
        return warm * (s.final_share + (1 - s.final_share) * 0.5 * (1 + math.cos(math.pi * progress)))

    return share


def engine_trainer(model, data: Data, s: Settings, steps: int, threads: int) -> Trainer:
    """The engine's Trainer with the bench's recipe: the first `steps` steps of its schedule."""
    return Trainer(model, data.train, lr=s.lr, epochs=steps, threads=threads,
                   batch_size=s.batch_size, seed=s.seed, lr_schedule=schedule(s),
                   betas=s.betas, weight_decay=s.weight_decay)


# ---- the textbook loop ------------------------------------------------------------------------


class TextbookBlock(nn.Module):
    """The notebook's attention and feed-forward, as one layer of a stack."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dim=d_model, num_heads=n_heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.ReLU(),
                                nn.Linear(4 * d_model, d_model))
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)

    def forward(self, h, mask, need_weights=True):
        h_norm = self.ln1(h)
        attn_output, attn_weights = self.attn(h_norm, h_norm, h_norm, attn_mask=mask,
                                              need_weights=need_weights)
        h = h + attn_output
        h_norm = self.ln2(h)
        ff_output = self.ff(h_norm)
        return h + ff_output


class TextbookGPT(nn.Module):
    """The notebook's model with its block stacked and a causal mask: a small GPT."""

    def __init__(self, vocab_size, d_model, n_heads, block_size, n_layers, need_weights=True):
        super().__init__()
        self.need_weights = need_weights  # True: as the notebook calls the attention
        self.token_embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(block_size, d_model)
        self.blocks = nn.ModuleList(TextbookBlock(d_model, n_heads) for _ in range(n_layers))
        self.lm_head = nn.Linear(d_model, vocab_size)
        mask = torch.triu(torch.ones(block_size, block_size, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, x):
        B, T = x.shape
        pos_ids = torch.arange(T, device=x.device)
        h = self.token_embed(x) + self.pos_embed(pos_ids)[None, :, :]
        for block in self.blocks:
            h = block(h, self.mask[:T, :T], self.need_weights)
        return self.lm_head(h)


def textbook_copy(engine: nn.Module, s: Settings, vocab_size: int, need_weights=True):
    """A textbook model holding the engine model's weights (the same start)."""
    model = TextbookGPT(vocab_size, s.d_model, s.n_heads, s.block_size, s.n_layers, need_weights)
    state = {}
    for name, value in engine.state_dict().items():
        if name.startswith("layers."):
            i, rest = name[len("layers."):].split(".", 1)
            name = f"blocks.{int(i) + 1}.{rest}"
        elif name.split(".")[0] in ("attn", "ff", "ln1", "ln2"):
            name = f"blocks.0.{name}"
        state[name] = value.clone()
    model.load_state_dict({**state, "mask": model.mask})
    return model


class TextbookRun:
    """The textbook training loop, run a chunk of steps at a time."""

    def __init__(self, model, data: Data, s: Settings):
        self.model, self.s = model, s
        self.X, self.targets = data.train.X, data.train.every_position_targets()
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, betas=s.betas,
                                           weight_decay=s.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule(s))
        self.criterion = nn.CrossEntropyLoss(ignore_index=IGNORE)
        self.batches = torch.Generator().manual_seed(s.seed)  # as the Trainer draws them
        self.history: list[float] = []

    def run(self, steps: int) -> None:
        model, V = self.model, self.model.lm_head.out_features
        model.train()
        for _ in range(steps):
            rows = torch.randint(len(self.X), (self.s.batch_size,), generator=self.batches)
            logits = model(self.X[rows])
            loss = self.criterion(logits.view(-1, V), self.targets[rows].view(-1))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.history.append(loss.item())


# ---- measuring ----------------------------------------------------------------------------------


def heldout_loss(last_logits, valid, rows: int = 2048) -> float:
    """Mean nats per held-out character, each predicted once from the window ending before it."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(valid), rows):
            logits = last_logits(valid.X[start : start + rows])
            total += F.cross_entropy(logits, valid.Y[start : start + rows], reduction="sum").item()
    return total / len(valid)


def excess_by_sentence(last_logits, data: Data, block: int) -> dict[str, tuple[int, float]]:
    """Where a model pays more than the grammar on the held-out stories: per kind of
    sentence (the first; later ones by their subject: one name, two names, a pronoun; and
    whether they begin past the window), how many and the nats over the grammar's in all.
    (A first sentence also carries the grammar's "a new story starts" (ln 4), which a model
    pays at the end of the story before it: that kind goes below zero.)"""
    losses = []
    with torch.no_grad():
        for start in range(0, len(data.valid), 2048):
            logits = last_logits(data.valid.X[start : start + 2048])
            losses += F.cross_entropy(logits, data.valid.Y[start : start + 2048],
                                      reduction="none").tolist()
    found: dict[str, list] = {}
    k = 0
    for story in data.valid_sentences:
        length = sum(len(sentence) + 1 for sentence, _ in story) - 1
        paid = [0.0] + losses[k : k + length]  # its first character is never predicted
        k += length
        at = 0
        for j, (sentence, nats) in enumerate(story):
            words, end = sentence.split(), at + len(sentence) + 1  # and the space or EOS after
            if j == 0:
                kind = "first sentence"
            else:
                kind = ("two names" if len(words) > 2 and words[1] == "and" else
                        "a pronoun" if words[0] in ("she", "he", "they") else "one name")
                kind += ", first line out of view" if at > block else ", first line in view"
            entry = found.setdefault(kind, [0, 0.0])
            entry[0] += 1
            entry[1] += math.fsum(paid[at:end]) - nats
            at = end
    assert k == len(losses)
    return {kind: (n, extra) for kind, (n, extra) in sorted(found.items())}


def bits(loss: float, data: Data) -> float:
    return loss * len(data.valid) / data.valid_characters / math.log(2)


class Clock:
    """Thread CPU time, process CPU time and wall time of the chunks run under it."""

    def __init__(self):
        self.thread = self.process = self.wall = 0.0
        self.steps = 0

    def time(self, run, steps: int) -> None:
        t, p, w = time.thread_time(), time.process_time(), time.perf_counter()
        run(steps)
        self.thread += time.thread_time() - t
        self.process += time.process_time() - p
        self.wall += time.perf_counter() - w
        self.steps += steps

    def rate(self, which: str) -> float:
        return self.steps / getattr(self, which)


def interleaved(runs: dict, steps: int, chunk: int) -> dict[str, Clock]:
    clocks = {name: Clock() for name in runs}
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        for name, run in runs.items():
            clocks[name].time(run, n)
        done += n
    return clocks


def matmul_step(s: Settings, vocab_size: int, library: str = "mkl"):
    """The linear layers' products of one step on every position: through ``torch.mm`` (MKL,
    what ``nn.Linear`` calls) into preallocated tensors, or through oneDNN as the engine calls
    it (`minillm.products.Products`)."""
    N, d = s.batch_size * s.block_size, s.d_model
    shapes = [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)] * s.n_layers + [(d, vocab_size)]
    g = torch.Generator().manual_seed(0)
    work = []
    for fan_in, fan_out in shapes:
        x, dy = torch.randn(N, fan_in, generator=g), torch.randn(N, fan_out, generator=g)
        w = torch.randn(fan_out, fan_in, generator=g)
        work.append((x, w, dy, torch.empty(N, fan_out), torch.empty(N, fan_in),
                     torch.empty(fan_out, fan_in)))

    def run(steps: int) -> None:
        for _ in range(steps):
            for x, w, dy, y, dx, dw in work:
                torch.mm(x, w.t(), out=y)  # forward
                torch.mm(dy, w, out=dx)  # backward, to the input
                torch.mm(dy.t(), x, out=dw)  # backward, to the weight

    products = Products(work[0][0])

    def run_onednn(steps: int) -> None:
        for _ in range(steps):
            for x, w, dy, y, dx, dw in work:
                products.linear(x, w, None, out=y)
                products.grad_input(dy, w, out=dx)
                products.grad_weight(dy, x, out=dw)

    flops = sum(3 * 2 * N * a * b for a, b in shapes)
    if library == "onednn":
        return (run_onednn if products.onednn else None), flops
    return run, flops


def rows_computed(s: Settings, data: Data, n: int = 200) -> tuple[float, float]:
    """The engine's share of the batch's positions it computes (the rest repeat shared
    left padding), and its first layer's share (one per distinct token and position)."""
    draws = torch.Generator().manual_seed(s.seed)
    rows = first = 0
    for _ in range(n):
        batch = data.train.X[torch.randint(len(data.train), (s.batch_size,), generator=draws)]
        shared = SharedRows(batch, causal=True)
        rows += shared.M
        first += len(shared.first_tokens)
    total = n * s.batch_size * s.block_size
    return rows / total, first / total


# ---- the run ------------------------------------------------------------------------------------


def window_check(s: Settings, blocks: list[int]) -> None:
    """The engine alone at each block size: held-out bits per character against the entropy."""
    for block in blocks:
        sb = replace(s, block_size=block)
        data = make_data(sb)
        model = engine_model(sb, data.train.vocab_size)
        trainer = engine_trainer(model, data, sb, sb.steps, threads=1)
        with torch_threads(1):
            trainer.run()
            model.eval()
            loss = heldout_loss(model.last_logits, data.valid)
        held_out = bits(loss, data)
        excess = excess_by_sentence(model.last_logits, data, block)
        total = math.fsum(extra for _, extra in excess.values())
        for kind, (n, extra) in excess.items():
            print(f"  {kind:34s} {n:5d} sentences: {extra / n:+6.2f} nats each over the "
                  f"grammar, {extra / total:4.0%} of the excess")
        print(f"block {block:4d}: held-out {held_out:.3f} bits per character = "
              f"{held_out / data.entropy_bits:.2f}x the entropy ({data.entropy_bits:.3f}; "
              f"floor for this window {data.window_bits / data.entropy_bits:.3f}x) after "
              f"{sb.steps} steps of batch {sb.batch_size}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=Settings.steps)
    parser.add_argument("--short-steps", type=int, default=200,
                        help="steps of the two-thread and SDPA timings")
    parser.add_argument("--chunk", type=int, default=50, help="steps per alternating chunk")
    parser.add_argument("--windows", type=int, nargs="+", metavar="BLOCK",
                        help="only train the engine at these block sizes and print held-out scores")
    args = parser.parse_args()
    s = replace(Settings(), steps=args.steps)
    if args.windows:
        window_check(s, args.windows)
        return
    start = time.perf_counter()
    data = make_data(s)
    V = data.train.vocab_size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available; {s}")
    print(f"data: {data.stories:,} stories, {data.characters:,} characters; "
          f"{len(data.train):,} training windows, {len(data.valid):,} held-out characters "
          f"to predict; vocabulary {V} (characters, PAD, EOS); built in "
          f"{time.perf_counter() - start:.0f} s")

    # One thread: the whole run, both loops from the same weights on the same batches, and
    # the matmuls alone in between (the same noise for all three).
    engine = engine_model(s, V)
    textbook = TextbookRun(textbook_copy(engine, s, V), data, s)
    trainer = engine_trainer(engine, data, s, s.steps, threads=1)
    assert trainer.fast is not None, "the engine should take its GPT fast path here"
    mm_run, flops = matmul_step(s, V)
    dnn_run, _ = matmul_step(s, V, "onednn")  # None where torch has no oneDNN
    runs = {"textbook": textbook.run, "engine": trainer.run, "matmuls": mm_run}
    if dnn_run is not None:
        runs["onednn"] = dnn_run
    with torch_threads(1):
        mm_run(2)  # first calls allocate
        if dnn_run is not None:
            dnn_run(2)  # and build oneDNN's kernels
        clocks = interleaved(runs, s.steps, args.chunk)
        engine.eval()
        textbook.model.eval()
        engine_loss = heldout_loss(engine.last_logits, data.valid)
        textbook_loss = heldout_loss(lambda x: textbook.model(x)[:, -1], data.valid)
    rows, first = rows_computed(s, data)

    tb, en, mkl = clocks["textbook"], clocks["engine"], clocks["matmuls"]
    dnn = clocks.get("onednn")
    # The limit is the faster library's: the engine's products go through oneDNN when torch
    # has it, so MKL's alone would understate what these shapes can cost.
    mm = dnn if dnn is not None and dnn.rate("thread") > mkl.rate("thread") else mkl
    print(f"\none thread, {s.steps} steps of batch {s.batch_size}, alternating chunks of "
          f"{args.chunk} (steps per second: thread CPU time | wall clock)")
    print(f"textbook loop:  {tb.rate('thread'):6.1f} | {tb.rate('wall'):6.1f}   "
          f"last batch loss {textbook.history[-1]:.4f}   held-out {textbook_loss:.4f} nats")
    print(f"engine:         {en.rate('thread'):6.1f} | {en.rate('wall'):6.1f}   "
          f"last batch loss {trainer.history[-1]:.4f}   held-out {engine_loss:.4f} nats")
    for name, clock in (("MKL", mkl), ("oneDNN", dnn)):
        if clock is not None:
            print(f"matmul limit:   {clock.rate('thread'):6.1f} | {clock.rate('wall'):6.1f}   "
                  f"({flops / 1e9:.2f} GFLOP a step, {flops * clock.rate('thread') / 1e9:.0f} "
                  f"GFLOP/s through {name}{', the limit' if clock is mm else ''})")
    library = "oneDNN" if trainer.fast.grads.products.onednn else "MKL"
    ratio = en.rate("thread") / tb.rate("thread")
    share = en.rate("thread") / mm.rate("thread")
    print(f"engine / textbook: {ratio:.2f}x by CPU time, "
          f"{en.rate('wall') / tb.rate('wall'):.2f}x by the wall clock; "
          f"|held-out difference| {abs(engine_loss - textbook_loss):.4f} nats (goal: 1.5x within 0.02)")
    print(f"engine / matmul limit: {share:.0%} by CPU time, {en.rate('wall') / mm.rate('wall'):.0%} "
          f"by the wall clock (moonshot: 50%); textbook {tb.rate('thread') / mm.rate('thread'):.0%}; "
          f"the engine's products through {library}, the textbook's through MKL; "
          f"the engine computes {rows:.0%} of the batch's positions "
          f"({first:.0%} in the first layer's projection), the limit all of them")

    # Two threads, and the textbook model with scaled_dot_product_attention, on fresh copies.
    n = args.short_steps
    engine2 = engine_model(s, V)  # the same schedule, its first n steps
    textbook2 = TextbookRun(textbook_copy(engine2, s, V), data, s)
    sdpa = TextbookRun(textbook_copy(engine2, s, V, need_weights=False), data, s)
    trainer2 = engine_trainer(engine2, data, s, n, threads=2)
    engine1 = engine_model(s, V)
    trainer1 = engine_trainer(engine1, data, s, n, threads=1)
    with torch_threads(1):
        one = interleaved({"sdpa": sdpa.run, "engine": trainer1.run}, n, args.chunk)
    with torch_threads(2):
        runs = {"textbook": textbook2.run, "engine": trainer2.run, "matmuls": mm_run}
        if dnn_run is not None:
            runs["onednn"] = dnn_run
        two = interleaved(runs, n, args.chunk)
    print(f"\n{n} steps, alternating chunks (steps per second: wall clock | per CPU-second of "
          f"the process)")
    print(f"one thread:  textbook + scaled_dot_product_attention {one['sdpa'].rate('wall'):6.1f} | "
          f"{one['sdpa'].rate('process'):6.1f}   engine {one['engine'].rate('wall'):6.1f} | "
          f"{one['engine'].rate('process'):6.1f}   engine / it: "
          f"{one['engine'].rate('process') / one['sdpa'].rate('process'):.2f}x by CPU time")
    tb2, en2, mm2 = two["textbook"], two["engine"], two["matmuls"]
    if "onednn" in two and two["onednn"].rate("wall") > mm2.rate("wall"):
        mm2 = two["onednn"]
    print(f"two threads: textbook {tb2.rate('wall'):6.1f} | {tb2.rate('process'):6.1f}   "
          f"engine {en2.rate('wall'):6.1f} | {en2.rate('process'):6.1f}   "
          f"matmul limit {mm2.rate('wall'):6.1f} | {mm2.rate('process'):6.1f}")
    print(f"two threads: engine / textbook {en2.rate('wall') / tb2.rate('wall'):.2f}x by the wall "
          f"clock, {en2.rate('process') / tb2.rate('process'):.2f}x by CPU time; engine "
          f"{en2.rate('wall') / mm2.rate('wall'):.0%} of the matmul limit by the wall clock")

    engine_bits = bits(engine_loss, data)
    print(f"\nheld-out after {s.steps} steps of batch {s.batch_size}: engine "
          f"{engine_bits:.3f} bits per character, textbook {bits(textbook_loss, data):.3f}; "
          f"the grammar's entropy {data.entropy_bits:.3f} (goal: within 1.2x); no model that reads "
          f"{s.block_size} characters back goes below {data.window_bits:.3f} on average "
          f"({data.window_bits / data.entropy_bits:.3f}x: `window_floor`)")
    # Two decimals: rounded to one, a ratio just short of the 1.5x goal would read as met.
    print(f"gpt_speed: engine {ratio:.2f}x the textbook loop ({share:.0%} of the matmul limit); "
          f"held-out {engine_bits:.3f} bits per character = {engine_bits / data.entropy_bits:.2f}x "
          f"the entropy")


if __name__ == "__main__":
    main()
