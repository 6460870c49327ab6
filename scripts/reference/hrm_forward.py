#!/usr/bin/env python3
"""A minimal PyTorch re-implementation of hrm's inference forward pass.

It loads a folder written by `hrm export RUN -o DIR --sample "some text"` (model.safetensors
in PyTorch's layout, config.json, sample.safetensors), runs the same HRM (or flat) forward on
the sample's input_ids, and compares its logits with the ones hrm wrote.

    python scripts/reference/hrm_forward.py DIR [--tolerance 1e-3]

Exit status 0 when the largest absolute difference is within the tolerance.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def rms_norm(x, eps):
    """Gain-free RMSNorm, as every block ends with."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rope_tables(head_dim, seq, theta):
    """cos/sin [seq, head_dim] in the rotate-half convention."""
    half = head_dim // 2
    i = torch.arange(head_dim, dtype=torch.float64)
    inv_freq = theta ** (-2.0 * (i % half) / head_dim)
    angles = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Weights:
    def __init__(self, tensors, block):
        self.t = tensors
        self.heads = block["n_heads"]
        self.eps = block["norm_eps"]

    def linear(self, x, name):
        return x @ self.t[name + ".weight"].T

    def attention(self, x, prefix, cos, sin):
        b, s, d = x.shape
        q, k, v = self.linear(x, prefix + ".qkv").chunk(3, dim=-1)
        split = lambda t: t.view(b, s, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        causal = torch.triu(torch.ones(s, s, dtype=torch.bool), diagonal=1)
        context = scores.masked_fill(causal, float("-inf")).softmax(-1) @ v
        return self.linear(context.transpose(1, 2).reshape(b, s, d), prefix + ".out")

    def feed_forward(self, x, prefix):
        gate = torch.nn.functional.silu(self.linear(x, prefix + ".gate_up.linear_inner"))
        return self.linear(gate * self.linear(x, prefix + ".gate_up.linear_outer"), prefix + ".down")

    def block(self, h, prefix, cos, sin):
        h = rms_norm(h + self.attention(h, prefix + ".attention", cos, sin), self.eps)
        return rms_norm(h + self.feed_forward(h, prefix + ".feed_forward"), self.eps)

    def stack(self, h, prefix, layers, cos, sin):
        for i in range(layers):
            h = self.block(h, f"{prefix}.{i}", cos, sin)
        return h


def hrm_logits(w, cfg, ids):
    block = cfg["block"]
    d = block["d_model"]
    seq = ids.shape[1]
    cos, sin = rope_tables(d // block["n_heads"], seq, block["rope_theta"])
    x = w.t["embedding.table.weight"][ids] * math.sqrt(d)
    z_h = w.t["h_init"].expand(1, seq, d).clone()
    z_l = w.t["l_init"].expand(1, seq, d).clone()
    steps = torch.zeros(1, seq, dtype=torch.long)
    halted = torch.zeros(1, seq, dtype=torch.bool)
    max_steps = cfg["halt_max_steps"]
    while True:
        new_h, new_l = z_h, z_l
        for _ in range(cfg["h_cycles"]):
            for _ in range(cfg["l_cycles"]):
                new_l = w.stack(new_l + new_h + x, "l_module.blocks", cfg["l_layers"], cos, sin)
            new_h = w.stack(new_h + new_l, "h_module.blocks", cfg["h_layers"], cos, sin)
        frozen = halted[..., None]
        z_h = torch.where(frozen, z_h, new_h)
        z_l = torch.where(frozen, z_l, new_l)
        logits = w.linear(z_h, "lm_head")
        q = w.linear(z_h, "q_head") + w.t["q_head.bias"]
        steps = steps + (~halted).long()
        halted = halted | (steps >= max_steps)
        if max_steps > 1:
            halted = halted | (q[..., 0] > q[..., 1])
        if bool(halted.all()):
            return logits


def flat_logits(w, cfg, ids):
    block = cfg["block"]
    d = block["d_model"]
    cos, sin = rope_tables(d // block["n_heads"], ids.shape[1], block["rope_theta"])
    h = w.t["embedding.table.weight"][ids] * math.sqrt(d)
    h = w.stack(h, "blocks", cfg["n_layers"], cos, sin)
    return w.linear(h, "lm_head")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="folder written by `hrm export ... --sample TEXT`")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args()
    config = json.loads((args.export / "config.json").read_text())
    model = config["model"]
    tensors = {k: v.float() for k, v in load_file(args.export / "model.safetensors").items()}
    sample = load_file(args.export / "sample.safetensors")
    ids, ours = sample["input_ids"].long(), sample["logits"].float()
    w = Weights(tensors, model["block"])
    with torch.no_grad():
        theirs = hrm_logits(w, model, ids) if model["arch"] == "hrm" else flat_logits(w, model, ids)
    diff = (theirs - ours).abs().max().item()
    same_argmax = (theirs.argmax(-1) == ours.argmax(-1)).float().mean().item()
    print(f"model: {config['model_type']} {model['block']['d_model']}-wide, vocab {config['vocab_size']}, "
          f"{len(tensors)} tensors, torch {torch.__version__}")
    print(f"sample: {ids.shape[1]} tokens; logits {tuple(ours.shape)}")
    print(f"max |torch - hrm| = {diff:.3e} (tolerance {args.tolerance:g}); same argmax at {same_argmax:.1%} of positions")
    ok = diff < args.tolerance
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
