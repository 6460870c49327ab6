#!/usr/bin/env python3
"""PyTorch reference of hrm's training step, for side-by-side speed benchmarks.

The same HRM as crates/hrm-core (post-norm blocks, gain-free RMSNorm, fused qkv, RoPE
rotate-half, SwiGLU, no biases, embedding × sqrt(d), lm_head on z_H) and the same step as
`cargo xtask bench train`: one segment of N×T from the initial states with the one-step
gradient (every L and H call but the last of each under no_grad), cross-entropy on random
tokens, backward, AdamW. Also the flat baseline (same blocks, `--arch flat`).

    python scripts/reference/hrm_train_bench.py --d-model 256 --heads 4 --h-layers 3 --l-layers 3 \
        --vocab 32100 --batch 32 --seq 512 --mode compile-bf16 --steps 20

Modes: eager-f32, eager-bf16 (autocast), compile-bf16 (torch.compile of the model + autocast,
the loss outside); and the like-for-like twins of hrm's precisions, the loss inside the
compiled function: pure-bf16 (weights, gradients and AdamW state in bf16, as `--dtype bf16`)
and autocast (f32 weights and AdamW state, bf16 products: mixed precision). `--max-autotune`
compiles with mode="max-autotune".
Prints one JSON line: tokens/s, step time, first-step time, peak memory (the allocator's
allocated and reserved bytes, and the process's own peak as `nvidia-smi` reports it, sampled
twice a second: the same measure `xtask bench train` reports for hrm).
"""

import argparse
import json
import math
import os
import subprocess
import threading
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class GpuMemory:
    """The most GPU memory this process held in any `nvidia-smi` sample (every 0.5 s)."""

    def __init__(self):
        self.peak, self.done = None, False
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
        while not self.done:
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                return
            for line in out.splitlines():
                pid, _, mib = line.partition(",")
                if pid.strip() == str(os.getpid()) and mib.strip().isdigit():
                    self.peak = max(self.peak or 0, int(mib) << 20)
            time.sleep(0.5)


def rms_norm(x, eps=1e-5):
    return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps).to(x.dtype)


def ffn_dim(d, expansion=4.0):
    return math.ceil(round(expansion * d * 2 / 3) / 256) * 256


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        f = ffn_dim(d)
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.inner = nn.Linear(d, f, bias=False)
        self.outer = nn.Linear(d, f, bias=False)
        self.down = nn.Linear(f, d, bias=False)

    def forward(self, h, cos, sin):
        b, s, d = h.shape
        q, k, v = self.qkv(h).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        half = q.shape[-1] // 2
        rot = lambda x: x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin
        a = F.scaled_dot_product_attention(rot(q), rot(k), v, is_causal=True)
        h = rms_norm(h + self.out(a.transpose(1, 2).reshape(b, s, d)))
        return rms_norm(h + self.down(F.silu(self.inner(h)) * self.outer(h)))


class Stack(nn.Module):
    def __init__(self, d, heads, layers):
        super().__init__()
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))

    def forward(self, h, cos, sin):
        for block in self.blocks:
            h = block(h, cos, sin)
        return h


class Model(nn.Module):
    def __init__(self, args):
        super().__init__()
        d = args.d_model
        self.args = args
        self.embedding = nn.Embedding(args.vocab, d)
        self.lm_head = nn.Linear(d, args.vocab, bias=False)
        if args.arch == "hrm":
            self.h = Stack(d, args.heads, args.h_layers)
            self.l = Stack(d, args.heads, args.l_layers)
            self.h_init = nn.Parameter(torch.randn(d) * 0.02, requires_grad=False)
            self.l_init = nn.Parameter(torch.randn(d) * 0.02, requires_grad=False)
            self.q_head = nn.Linear(d, 2)  # (q_halt, q_continue), weights 0, bias -5 as hrm's
            nn.init.zeros_(self.q_head.weight)
            nn.init.constant_(self.q_head.bias, -5.0)
        else:
            self.blocks = Stack(d, args.heads, args.layers)
        half = d // args.heads // 2
        i = torch.arange(2 * half)
        inv = 10000.0 ** (-2.0 * (i % half) / (2 * half))
        ang = torch.arange(args.seq)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)

    def forward(self, ids):
        a = self.args
        x = self.embedding(ids) * math.sqrt(a.d_model)
        if a.arch == "flat":
            cos, sin = self.cos.to(x.dtype), self.sin.to(x.dtype)
            return self.lm_head(self.blocks(x, cos, sin))
        z_h, z_l = self.initial(*ids.shape, x.dtype)
        return self.lm_head(self.segment(x, z_h, z_l)[0])

    def initial(self, b, s, dtype):
        d = self.args.d_model
        return self.h_init.expand(b, s, d).to(dtype), self.l_init.expand(b, s, d).to(dtype)

    def segment(self, x, z_h, z_l):
        """One segment's N x T calls from (z_h, z_l) with the one-step gradient: new (z_h, z_l)."""
        a = self.args
        cos, sin = self.cos.to(x.dtype), self.sin.to(x.dtype)
        with torch.no_grad():  # one-step gradient: all but the last L and H call
            for n in range(a.h_cycles):
                last = n + 1 == a.h_cycles
                for _ in range(a.l_cycles - 1 if last else a.l_cycles):
                    z_l = self.l(z_l + z_h + x, cos, sin)
                if not last:
                    z_h = self.h(z_h + z_l, cos, sin)
        z_l = self.l(z_l.detach() + z_h.detach() + x, cos, sin)
        z_h = self.h(z_h.detach() + z_l, cos, sin)
        return z_h, z_l


def masked_mean(values, mask):
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def act_loss(model, ids, z_h0, z_l0, steps, halted, max_steps, q_weight=0.5):
    """hrm's ACT segment loss (hrm-train's objective.rs): the segment from the carry, halted
    positions frozen; LM cross-entropy over running positions; BCE of q_halt against
    correctness and of q_continue against the bootstrapped target of one more no-gradient
    segment. Returns the loss, the new carry's states and q."""
    inputs, targets = ids[:, :-1], ids[:, 1:]
    x = model.embedding(inputs) * math.sqrt(model.args.d_model)
    z_h, z_l = model.segment(x, z_h0, z_l0)
    frozen = halted[..., None]
    z_h, z_l = torch.where(frozen, z_h0, z_h), torch.where(frozen, z_l0, z_l)
    logits, q = model.lm_head(z_h).float(), model.q_head(z_h).float()
    running = (~halted).float()
    ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), reduction="none").view_as(running)
    lm = masked_mean(ce, running)
    correct = (logits.argmax(-1) == targets).float()
    steps = steps + (~halted).long()
    with torch.no_grad():
        next_h, _ = model.segment(x, z_h.detach(), z_l.detach())
        next_q = model.q_head(torch.where(frozen, z_h, next_h)).float()
        best = torch.where(steps >= max_steps, next_q[..., 0], next_q.max(-1).values)
        target = torch.sigmoid(best)
    bce = F.binary_cross_entropy_with_logits
    q_loss = masked_mean(bce(q[..., 0], correct, reduction="none"), running) + \
        masked_mean(bce(q[..., 1], target, reduction="none"), running)
    return lm + q_weight * q_loss, z_h.detach(), z_l.detach(), steps, q.detach()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="hrm", choices=["hrm", "flat"])
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--h-layers", type=int, default=3)
    p.add_argument("--l-layers", type=int, default=3)
    p.add_argument("--layers", type=int, default=6, help="flat model layers")
    p.add_argument("--h-cycles", type=int, default=2)
    p.add_argument("--l-cycles", type=int, default=2)
    p.add_argument("--vocab", type=int, default=32100)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--mode", default="eager-bf16",
                   choices=["eager-f32", "eager-bf16", "compile-bf16", "pure-bf16", "autocast"])
    p.add_argument("--max-autotune", action="store_true", help="torch.compile(mode='max-autotune')")
    p.add_argument("--act", action="store_true", help="hrm train's ACT step (xtask bench train --act)")
    p.add_argument("--halt-max-steps", type=int, default=4)
    p.add_argument("--exploration", type=float, default=0.1)
    p.add_argument("--tag", default="", help="a label copied into the output (e.g. the preset name)")
    args = p.parse_args()
    args.act = args.act and args.arch == "hrm"  # the flat baseline has no ACT: its step either way
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = Model(args).to(dev)
    if args.mode == "pure-bf16":
        model = model.to(torch.bfloat16)
    params = sum(t.numel() for t in model.parameters() if t.requires_grad)
    opt = torch.optim.AdamW([t for t in model.parameters() if t.requires_grad], lr=1e-4, weight_decay=0.1, fused=dev == "cuda")
    compile_mode = "max-autotune" if args.max_autotune else None
    fwd = torch.compile(model, mode=compile_mode) if args.mode == "compile-bf16" else model
    autocast = args.mode in ("eager-bf16", "compile-bf16", "autocast")
    ids = torch.randint(0, args.vocab, (args.batch, args.seq + 1), device=dev)

    def forward_loss(ids):
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=autocast):
            logits = fwd(ids[:, :-1])
            return F.cross_entropy(logits.float().view(-1, args.vocab), ids[:, 1:].reshape(-1))

    def forward_act_loss(ids, carry):
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=autocast):
            return act_loss(model, ids, *carry, args.halt_max_steps)

    if args.mode in ("pure-bf16", "autocast"):
        forward_loss = torch.compile(forward_loss, mode=compile_mode)
        forward_act_loss = torch.compile(forward_act_loss, mode=compile_mode)
    carry = [None]

    def act_step_loss():
        if carry[0] is None:
            dtype = torch.bfloat16 if args.mode == "pure-bf16" else torch.float32
            z_h, z_l = model.initial(args.batch, args.seq, dtype)
            zeros = torch.zeros(args.batch, args.seq, dtype=torch.long, device=dev)
            carry[0] = (z_h, z_l, zeros, zeros.bool())
        loss, z_h, z_l, steps, q = forward_act_loss(ids, carry[0])
        explore = torch.rand(steps.shape, device=dev) < args.exploration
        min_steps = torch.where(explore, torch.randint_like(steps, 2, args.halt_max_steps + 1), 0)
        halted = carry[0][3] | (steps >= args.halt_max_steps) | ((q[..., 0] > q[..., 1]) & (steps >= min_steps))
        # As hrm's trainer: whether the batch is done is read after each segment.
        carry[0] = None if bool(halted.all()) else (z_h, z_l, steps, halted)
        return loss

    def step():
        loss = act_step_loss() if args.act else forward_loss(ids)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    gpu_memory = GpuMemory() if dev == "cuda" else None
    t0 = time.perf_counter()
    step().item()
    first = time.perf_counter() - t0
    for _ in range(args.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    sync()
    dt = (time.perf_counter() - t0) / args.steps
    tokens = args.batch * args.seq
    print(json.dumps({
        "impl": "pytorch", "preset": args.tag, "mode": args.mode, "arch": args.arch, "parameters": params,
        "reference_mode": args.mode + ("+max-autotune" if args.max_autotune else ""),
        "step": "act" if args.act else "segment",
        "weights": "bf16" if args.mode == "pure-bf16" else "f32",
        "batch": args.batch, "seq": args.seq, "step_s": dt, "tokens_per_s": tokens / dt,
        "first_step_s": first, "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if dev == "cuda" else None,
        "peak_reserved_gb": torch.cuda.max_memory_reserved() / 1e9 if dev == "cuda" else None,
        "peak_gpu_mem_bytes": gpu_memory.peak if gpu_memory else None,
        "torch": torch.__version__, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
    }))


if __name__ == "__main__":
    main()
