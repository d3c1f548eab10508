"""Training speed: the engine against the notebook's own loop, in the same process.

    python bench/train_speed.py

Both train the notebook's configuration (cat/dog corpus, block_size 5, d_model 32, 2 heads,
AdamW lr 1e-3, 300 full-batch epochs, seed 42). The notebook's loop is re-implemented
honestly below: its model class and its loop, unchanged, with torch's default thread count.
The engine's speed comes from skipping work, not from doing it faster: one thread (tiny
tensors lose more to thread hand-offs than they gain); only the last position's prediction
computed, the only one the loss uses; each distinct context run once (several windows share
one); gradients written out by hand instead of recorded by autograd (minillm/handgrad.py,
tested equal to autograd); and AdamW over one flat tensor of all the weights.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch import optim  # noqa: E402

from minillm.corpus import CATS_AND_DOGS  # noqa: E402
from minillm.data import build_dataset, loss_floor  # noqa: E402
from minillm.model import ModelConfig, build_model  # noqa: E402
from minillm.tokenizers import WordTokenizer  # noqa: E402
from minillm.train import Trainer  # noqa: E402


class NotebookMiniTransformer(nn.Module):
    """The notebook's class, as written there."""

    def __init__(self, vocab_size, d_model=32, n_heads=2, block_size=5):
        super().__init__()
        self.d_model = d_model
        self.block_size = block_size
        self.token_embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(block_size, d_model)
        self.attn = nn.MultiheadAttention(embed_dim=d_model, num_heads=n_heads, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.ReLU(), nn.Linear(4 * d_model, d_model)
        )
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size)

    def forward(self, x):
        B, T = x.shape
        tok_emb = self.token_embed(x)
        pos_ids = torch.arange(T, device=x.device)
        pos_emb = self.pos_embed(pos_ids)[None, :, :]
        h = tok_emb + pos_emb
        h_norm = self.ln1(h)
        attn_output, attn_weights = self.attn(h_norm, h_norm, h_norm)
        h = h + attn_output
        h_norm = self.ln2(h)
        ff_output = self.ff(h_norm)
        h = h + ff_output
        logits = self.lm_head(h)
        return logits, attn_weights


def notebook_run(X, Y, vocab_size_with_pad, epochs=300):
    """The notebook's cells: seed, model, AdamW, CrossEntropyLoss, the train loop."""
    torch.manual_seed(42)
    model = NotebookMiniTransformer(vocab_size=vocab_size_with_pad, d_model=32, n_heads=2, block_size=5)
    optimizer = optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(1, epochs + 1):
        logits, _ = model(X)
        logits_last = logits[:, -1, :]
        loss = criterion(logits_last, Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def engine_run(dataset, epochs=300):
    config = ModelConfig(vocab_size=dataset.vocab_size, block_size=5, d_model=32, n_heads=2)
    trainer = Trainer(build_model(config, seed=42), dataset, lr=1e-3, epochs=epochs)
    trainer.run()
    return trainer.history[-1]


def main(repeats: int = 5) -> float:
    tokenizer = WordTokenizer.fit(CATS_AND_DOGS)
    dataset = build_dataset(CATS_AND_DOGS, tokenizer, block_size=5)
    floor = loss_floor(dataset)
    engine_run(dataset, 20), notebook_run(dataset.X, dataset.Y, dataset.vocab_size, 20)  # warm up
    engine_times, notebook_times = [], []
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        t = time.perf_counter()
        notebook_loss = notebook_run(dataset.X, dataset.Y, dataset.vocab_size)
        notebook_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        engine_loss = engine_run(dataset)
        engine_times.append(time.perf_counter() - t)
    engine_s, notebook_s = statistics.median(engine_times), statistics.median(notebook_times)
    ratio = notebook_s / engine_s
    print(f"torch {torch.__version__}, default threads {torch.get_num_threads()}, median of {repeats}")
    print(f"notebook loop: {notebook_s:.3f} s   final loss {notebook_loss:.4f}")
    print(f"engine:        {engine_s:.3f} s   final loss {engine_loss:.4f}")
    print(f"loss floor:    {floor:.4f}   |engine - notebook| = {abs(engine_loss - notebook_loss):.4f}")
    print(f"train_speed: engine is {ratio:.1f}x faster than the notebook's loop")
    return ratio


if __name__ == "__main__":
    main()
