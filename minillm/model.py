"""The notebook's tiny transformer, with each attention head's weights available.

One block, as in the notebook:

    ids (B, T) -> token embedding + position embedding          (B, T, d_model)
               -> LayerNorm -> multi-head self-attention -> +   (residual)
               -> LayerNorm -> feed-forward (4x wider)   -> +   (residual)
               -> LM head: one score (logit) per vocabulary id  (B, T, vocab_size)

Two choices the notebook leaves implicit are explicit here:

- ``loss_on="last"`` (the notebook): only the last position's prediction is scored. Every
  position sees the whole window, which is fine: none of them is scored on a token it can see.
- ``loss_on="every"`` (GPT style): every position predicts the token after it. Then
  ``causal=True`` is essential: without the mask, position t can look at token t + 1, the
  very answer it is asked for, and the training loss drops below what is honestly possible.

Modules are created in the notebook's order, and `build_model` draws their initial weights in
that same order from a `torch.Generator` of its own, so seed 42 gives the notebook's initial
weights (those of ``torch.manual_seed(42)`` before building it) without touching torch's global
random state, which every session of a class server shares.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from minillm.data import IGNORE


@dataclass
class ModelConfig:
    vocab_size: int  # ids the model reads and predicts, PAD (and EOS) included
    block_size: int = 5  # context length: how many previous tokens the model sees
    d_model: int = 32  # width of every token's vector
    n_heads: int = 2  # attention heads; each works on d_model // n_heads dimensions
    causal: bool = False  # mask attention to later positions (needed for loss_on="every")
    loss_on: str = "last"  # "last" (the notebook) or "every" (GPT style)
    n_layers: int = 1  # blocks of attention + feed-forward, one on top of the other (notebook: 1)

    def __post_init__(self):
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


MAX_LAYERS = 4


def head_choices(d_model: int, candidates=(1, 2, 4, 8, 16)) -> list[int]:
    """The head counts a model of width `d_model` can have: those that divide it evenly.

    >>> head_choices(8)
    [1, 2, 4, 8]
    """
    return [h for h in candidates if d_model % h == 0]


def config_problems(config: ModelConfig) -> list[str]:
    """What is wrong with a configuration, in plain words (empty when it is fine)."""
    problems = []
    if config.vocab_size < 2:
        problems.append("the vocabulary needs at least 2 ids")
    if config.block_size < 1:
        problems.append("block size must be at least 1")
    if config.d_model < 1 or config.n_heads < 1:
        problems.append("d_model and heads must be at least 1")
    elif config.d_model % config.n_heads:
        problems.append(
            f"{config.n_heads} heads do not divide d_model = {config.d_model} evenly "
            f"(each head gets d_model / heads dimensions)"
        )
    if config.loss_on not in ("last", "every"):
        problems.append("loss_on must be 'last' or 'every'")
    if not 1 <= config.n_layers <= MAX_LAYERS:
        problems.append(f"layers must be from 1 to {MAX_LAYERS}")
    return problems


def causal_mask(block_size: int) -> torch.Tensor:
    """(T, T) booleans, True above the diagonal: position i may not look at j > i."""
    return torch.triu(torch.ones(block_size, block_size, dtype=torch.bool), 1)


class Block(nn.Module):
    """One more layer of a deeper model: LayerNorm -> attention -> +, LayerNorm -> feed-forward -> +.

    The notebook's one layer keeps its modules on the model itself (``model.attn``,
    ``model.ff``, ``model.ln1``, ``model.ln2``), so its weights keep the notebook's names;
    layers 2, 3, ... are Blocks in ``model.layers``.
    """

    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dim=d, num_heads=n_heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d))
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)


class MiniTransformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        # Same modules, same order as the notebook (so a seed gives the same weights).
        self.token_embed = nn.Embedding(config.vocab_size, d)
        self.pos_embed = nn.Embedding(config.block_size, d)
        self.attn = nn.MultiheadAttention(embed_dim=d, num_heads=config.n_heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d))
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)
        # Empty for the notebook's one layer: then no module (and no random draw) is added.
        self.layers = nn.ModuleList(Block(d, config.n_heads) for _ in range(config.n_layers - 1))
        self.lm_head = nn.Linear(d, config.vocab_size)
        self.register_buffer("causal_mask", causal_mask(config.block_size), persistent=False)

    def blocks(self) -> list[nn.Module]:
        """The layers in order, each with .attn, .ff, .ln1, .ln2 (the first is the model)."""
        return [self, *self.layers]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        pos = torch.arange(T, device=x.device)
        return self.token_embed(x) + self.pos_embed(pos)[None]  # (B, T, d)

    def _mask(self, T: int) -> torch.Tensor | None:
        return self.causal_mask[:T, :T] if self.config.causal else None

    def _block(self, block, h, need_weights: bool):
        """h -> h after one layer, and that layer's per-head attention (or None)."""
        h_norm = block.ln1(h)
        attn_out, attention = block.attn(
            h_norm,
            h_norm,
            h_norm,
            attn_mask=self._mask(h.shape[1]),
            need_weights=need_weights,
            average_attn_weights=False,
        )
        h = h + attn_out  # residual
        h = h + block.ff(block.ln2(h))  # residual
        return h, attention

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        """Logits for every position, and per-head attention weights when asked.

        x: (B, T) ids -> logits (B, T, vocab_size), attention (B, n_heads, T, T) or None.
        Row i of a head's (T, T) matrix says how much position i looks at each position.
        The notebook's `attn_weights` is the average over heads: `attention.mean(dim=1)`.
        The attention is the first layer's; `attention_maps` gives every layer's.
        """
        h, first = self._embed(x), None
        for i, block in enumerate(self.blocks()):
            h, attention = self._block(block, h, need_weights and i == 0)
            first = attention if i == 0 else first
        return self.lm_head(h), first

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's per-head attention for x: a list of (B, n_heads, T, T), layer 1 first."""
        h, maps = self._embed(x), []
        for block in self.blocks():
            h, attention = self._block(block, h, True)
            maps.append(attention)
        return maps

    def last_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last position only: (B, T) -> (B, vocab_size).

        Equal to ``forward(x)[0][:, -1]`` but skips the work nothing uses: in the last layer
        only the last position asks the attention question (keys and values still come from
        every position), and only its vector goes through the feed-forward and the LM head.
        The last position may look everywhere, so the causal mask changes nothing there.
        Earlier layers (a deeper model) run on every position: the next layer reads them all.
        """
        h = self._embed(x)  # (B, T, d)
        *lower, top = self.blocks()
        for block in lower:
            h, _ = self._block(block, h, False)
        h_norm = top.ln1(h)
        h_last = h[:, -1:] + self._last_attention(h_norm, top.attn)
        h_last = h_last + top.ff(top.ln2(h_last))
        return self.lm_head(h_last)[:, 0]

    def _last_attention(self, h_norm: torch.Tensor, attn: nn.MultiheadAttention) -> torch.Tensor:
        """The attention block's output for the last position only: (B, T, d) -> (B, 1, d).

        The same sums `nn.MultiheadAttention` does with the same weights, written out so that
        only the last position's query is computed (and without the module's many checks,
        which cost more than the arithmetic on tensors this small).
        """
        B, T, d = h_norm.shape
        H = self.config.n_heads
        weight, bias = attn.in_proj_weight, attn.in_proj_bias  # rows: q, k, v
        q = F.linear(h_norm[:, -1:], weight[:d], bias[:d])  # (B, 1, d)
        k, v = F.linear(h_norm, weight[d:], bias[d:]).split(d, dim=-1)  # (B, T, d) each
        q = q.view(B, 1, H, d // H).transpose(1, 2)  # (B, H, 1, hs)
        k = k.view(B, T, H, d // H).transpose(1, 2)  # (B, H, T, hs)
        v = v.view(B, T, H, d // H).transpose(1, 2)  # (B, H, T, hs)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, 1, hs): softmax(qk/sqrt(hs)) v
        return attn.out_proj(out.transpose(1, 2).reshape(B, 1, d))

    def loss(self, x: torch.Tensor, y: torch.Tensor, every_targets: torch.Tensor | None = None):
        """Mean cross-entropy for this model's objective.

        "last": predict y from each window. "every": predict every_targets (B, T), the token
        after each position (IGNORE where there is none).
        """
        if self.config.loss_on == "last":
            return F.cross_entropy(self.last_logits(x), y)
        if every_targets is None:
            raise ValueError("loss_on='every' needs every_targets (Dataset.every_position_targets())")
        logits, _ = self(x)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), every_targets.reshape(-1), ignore_index=IGNORE
        )


def build_model(config: ModelConfig, seed: int = 42) -> MiniTransformer:
    """A freshly initialised model; the same seed always gives the same weights.

    The weights are drawn from a generator made for this model alone, never from torch's
    global one: sessions on a server are threads of one process, and two of them seeding the
    global generator at the same moment would draw each other's numbers.
    """
    with torch.device("meta"):  # shapes only: PyTorch's own initialisation draws nothing
        model = MiniTransformer(config)
    model = model.to_empty(device="cpu")
    model.causal_mask = causal_mask(config.block_size)
    initialise(model, torch.Generator().manual_seed(seed))
    return model


def initialise(model: nn.Module, generator: torch.Generator) -> None:
    """Draw every weight of `model` from `generator`, as PyTorch's constructors would.

    Every weight is written here (a model built on the meta device has none yet), following
    each module's own `reset_parameters` rules, in the order the modules were created, so
    ``initialise(model, torch.Generator().manual_seed(s))`` gives the same weights as
    ``torch.manual_seed(s)`` followed by building the model:

    - ``nn.Embedding``: normal(0, 1);
    - ``nn.Linear``: weight uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Kaiming with a = sqrt(5)),
      bias the same bound;
    - ``nn.MultiheadAttention``: its output projection is a Linear made first, then the
      packed query/key/value weight is Xavier-uniform and both biases are zero;
    - ``nn.LayerNorm``: ones and zeros, nothing random.
    """
    done: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            if id(module) in done:
                continue
            if isinstance(module, nn.MultiheadAttention):
                _linear(module.out_proj, generator)
                done.add(id(module.out_proj))
                nn.init.xavier_uniform_(module.in_proj_weight, generator=generator)
                nn.init.zeros_(module.in_proj_bias)
                nn.init.zeros_(module.out_proj.bias)
            elif isinstance(module, nn.Linear):
                _linear(module, generator)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, generator=generator)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def _linear(layer: nn.Linear, generator: torch.Generator) -> None:
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1 / math.sqrt(layer.weight.shape[1])
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
