#!/usr/bin/env python3
"""PyTorch's cached HRM decoding: the yardstick for `xtask bench decode` (issue: GPU decoding).

It loads a folder written by `hrm export RUN -o DIR` (model.safetensors, config.json) and
decodes greedily with a key/value cache, with the semantics of docs/inference.md ("Cached
decoding"): every attention call of every ACT segment has its own cache slot, and a halted
position keeps serving as a key in later segments from its frozen state. Two ways:

- `eager`: hrm's algorithm. A token runs segments until every row has halted (the host reads
  the halting mask after each segment); a segment that earlier positions skipped is first
  filled in for them from their final states.
- `graphs`: every token runs all `halt_max_steps` segments, halted rows frozen. This computes
  the same keys, values and logits (a skipped segment's keys are exactly what fill-in
  computes), with static shapes: caches preallocated to the window, the position a device
  tensor, greedy argmax on the device. On CUDA one token's launches are captured as a CUDA
  graph and replayed; elsewhere the same code runs uncaptured (`static`, for checking).

    python scripts/reference/hrm_decode.py DIR --batch 1 --prompt 128 --tokens 256 \
        --mode graphs --dtype bf16 [--json out.json] [--check]

`--check` compares the modes' tokens, and the last position's logits against a full
recompute (hrm_forward.py's), on the CPU or GPU it runs on.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from hrm_forward import Weights, hrm_logits, rms_norm, rope_tables, rotate  # noqa: E402


class Decoder:
    """One model's weights and its cache slots: (segment, call, layer) -> keys, values."""

    def __init__(self, w, cfg, batch, window, device, dtype):
        self.w, self.cfg, self.batch, self.window = w, cfg, batch, window
        block = cfg["block"]
        self.d, self.heads = block["d_model"], block["n_heads"]
        self.head_dim = self.d // self.heads
        cos, sin = rope_tables(self.head_dim, window, block["rope_theta"])
        self.cos, self.sin = cos.to(device, dtype), sin.to(device, dtype)
        self.device, self.dtype = device, dtype
        self.slots = {}

    def calls(self):
        """The attention stacks of one segment in order: (module prefix, layers), per call."""
        c = self.cfg
        for _ in range(c["h_cycles"]):
            for _ in range(c["l_cycles"]):
                yield "l"
            yield "h"

    def segment(self, z_h, z_l, x, segment, write):
        """One segment's N x T recurrence; `write(slot, q, k, v)` attends through the cache."""
        c, new_h, new_l = self.cfg, z_h, z_l
        for call, module in enumerate(self.calls()):
            if module == "l":
                new_l = self.stack(new_l + new_h + x, "l_module.blocks", c["l_layers"], (segment, call), write)
            else:
                new_h = self.stack(new_h + new_l, "h_module.blocks", c["h_layers"], (segment, call), write)
        return new_h, new_l

    def stack(self, h, prefix, layers, slot, write):
        w = self.w
        for i in range(layers):
            p = f"{prefix}.{i}"
            b, n, d = h.shape
            q, k, v = w.linear(h, p + ".attention.qkv").chunk(3, dim=-1)
            split = lambda t: t.view(b, n, self.heads, self.head_dim).transpose(1, 2)
            context = write(slot + (i,), split(q), split(k), split(v))
            attended = w.linear(context.transpose(1, 2).reshape(b, n, d), p + ".attention.out")
            h = rms_norm(h + attended, w.eps)
            h = rms_norm(h + w.feed_forward(h, p + ".feed_forward"), w.eps)
        return h

    def q_values(self, z_h):
        return self.w.linear(z_h, "q_head") + self.w.t["q_head.bias"]

    def halt(self, steps, halted, q):
        steps = steps + (~halted).long()
        halted = halted | (steps >= self.cfg["halt_max_steps"])
        if self.cfg["halt_max_steps"] > 1:
            halted = halted | (q[..., 0] > q[..., 1])
        return steps, halted

    def initial(self, n):
        d = self.d
        z_h = self.w.t["h_init"].expand(self.batch, n, d).clone()
        z_l = self.w.t["l_init"].expand(self.batch, n, d).clone()
        steps = torch.zeros(self.batch, n, dtype=torch.long, device=self.device)
        return z_h, z_l, steps, torch.zeros_like(steps, dtype=torch.bool)

    def embed(self, ids):
        return self.w.t["embedding.table.weight"][ids] * math.sqrt(self.d)


class EagerDecoder(Decoder):
    """hrm's algorithm: growing caches, early exit read on the host, fill-in of skipped segments."""

    def __init__(self, *a):
        super().__init__(*a)
        self.filled = {}  # segment -> positions whose keys it holds
        self.finals = None  # final (z_h, z_l) of every decoded position
        self.xs = None  # embeddings of every decoded position
        self.segments = []  # segments each decode call ran

    def attend(self, start):
        def write(slot, q, k, v):
            n = q.shape[2]
            cos, sin = self.cos[start : start + n], self.sin[start : start + n]
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            if slot in self.slots:
                k = torch.cat([self.slots[slot][0], k], dim=2)
                v = torch.cat([self.slots[slot][1], v], dim=2)
            self.slots[slot] = (k, v)
            keys = torch.arange(k.shape[2], device=self.device)
            mask = keys[None, :] > torch.arange(start, start + n, device=self.device)[:, None]
            scores = (q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)).masked_fill(mask, float("-inf"))
            return scores.softmax(-1) @ v

        return write

    def fill_in(self, segment, upto):
        have = self.filled.get(segment, 0)
        if have < upto:
            z_h, z_l = (t[:, have:upto] for t in self.finals)
            self.segment(z_h, z_l, self.xs[:, have:upto], segment, self.attend(have))
            self.filled[segment] = upto

    def decode(self, ids):
        """Logits of the chunk `ids` [batch, n] that follows the cached positions."""
        start, n = (0 if self.xs is None else self.xs.shape[1]), ids.shape[1]
        x = self.embed(ids)
        z_h, z_l, steps, halted = self.initial(n)
        segment = 0
        while True:
            self.fill_in(segment, start)
            new_h, new_l = self.segment(z_h, z_l, x, segment, self.attend(start))
            frozen = halted[..., None]
            z_h, z_l = torch.where(frozen, z_h, new_h), torch.where(frozen, z_l, new_l)
            logits = self.w.linear(z_h, "lm_head")
            steps, halted = self.halt(steps, halted, self.q_values(z_h))
            self.filled[segment] = start + n
            segment += 1
            if bool(halted.all()):
                break
        self.segments.append(segment)
        if self.xs is None:
            self.xs, self.finals = x, (z_h, z_l)
        else:
            self.xs = torch.cat([self.xs, x], dim=1)
            self.finals = tuple(torch.cat([old, new], dim=1) for old, new in zip(self.finals, (z_h, z_l)))
        return logits


class StaticDecoder(Decoder):
    """Every segment for every token, caches preallocated, the position on the device."""

    def __init__(self, *a):
        super().__init__(*a)
        shape = (self.batch, self.heads, self.window, self.head_dim)
        for segment in range(self.cfg["halt_max_steps"]):
            for call, module in enumerate(self.calls()):
                layers = self.cfg["l_layers" if module == "l" else "h_layers"]
                for i in range(layers):
                    self.slots[(segment, call, i)] = (torch.zeros(shape, device=self.device, dtype=self.dtype),
                                                      torch.zeros(shape, device=self.device, dtype=self.dtype))
        self.keys = torch.arange(self.window, device=self.device)

    def attend(self, positions):
        def write(slot, q, k, v):
            cos, sin = self.cos[positions], self.sin[positions]
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            keys, values = self.slots[slot]
            keys.index_copy_(2, positions, k)
            values.index_copy_(2, positions, v)
            mask = self.keys[None, :] > positions[:, None]
            scores = (q @ keys.transpose(-1, -2) / math.sqrt(self.head_dim)).masked_fill(mask, float("-inf"))
            return scores.softmax(-1) @ values

        return write

    def decode(self, ids, positions):
        """Logits of `ids` [batch, n] at `positions` [n] (a device tensor), all segments run."""
        x = self.embed(ids)
        z_h, z_l, steps, halted = self.initial(ids.shape[1])
        for segment in range(self.cfg["halt_max_steps"]):
            new_h, new_l = self.segment(z_h, z_l, x, segment, self.attend(positions))
            frozen = halted[..., None]
            z_h, z_l = torch.where(frozen, z_h, new_h), torch.where(frozen, z_l, new_l)
            steps, halted = self.halt(steps, halted, self.q_values(z_h))
        return self.w.linear(z_h, "lm_head")


def generate_eager(dec, prompt, tokens, sync):
    logits = dec.decode(prompt)
    sync()
    first = time.perf_counter()
    out = [logits[:, -1].argmax(-1, keepdim=True)]
    for _ in range(tokens - 1):
        out.append(dec.decode(out[-1])[:, -1].argmax(-1, keepdim=True))
    sync()
    return torch.cat(out, dim=1), first


def generate_static(dec, prompt, tokens, sync, capture):
    n = prompt.shape[1]
    logits = dec.decode(prompt, torch.arange(n, device=dec.device))
    out = torch.zeros(dec.batch, tokens, dtype=torch.long, device=dec.device)
    out[:, 0] = logits[:, -1].argmax(-1)
    position = torch.tensor([n], device=dec.device)
    column = torch.zeros(1, dtype=torch.long, device=dec.device)

    def step():
        token = out.index_select(1, column)
        nxt = dec.decode(token, position)[:, -1].argmax(-1, keepdim=True)
        column.add_(1)
        position.add_(1)
        out.index_copy_(1, column, nxt)

    sync()
    first = time.perf_counter()
    if capture:
        step_graph = capture_graph(step, (position, column, out))
        for _ in range(tokens - 1):
            step_graph.replay()
    else:
        for _ in range(tokens - 1):
            step()
    sync()
    return out, first


def capture_graph(step, counters):
    """Warms `step` up on a side stream, then captures one call; the counters are put back."""
    saved = [t.clone() for t in counters]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for t, s in zip(counters, saved):
        t.copy_(s)
    return graph


def load(export, device, dtype):
    config = json.loads((export / "config.json").read_text())
    tensors = {k: v.to(device, dtype) for k, v in load_file(export / "model.safetensors").items()}
    return config, Weights(tensors, config["model"]["block"])


def run(args, mode, w, cfg, prompt, device, dtype):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    window = min(cfg["block"]["max_seq_len"], args.prompt + args.tokens)
    start = time.perf_counter()
    with torch.no_grad():
        if mode == "eager":
            dec = EagerDecoder(w, cfg, args.batch, window, device, dtype)
            tokens, first = generate_eager(dec, prompt, args.tokens, sync)
            print(f"eager: segments a token {sum(dec.segments[1:]) / max(len(dec.segments) - 1, 1):.2f} (prefill {dec.segments[0]})")
        else:
            dec = StaticDecoder(w, cfg, args.batch, window, device, dtype)
            tokens, first = generate_static(dec, prompt, args.tokens, sync, device.type == "cuda" and mode == "graphs")
    end = time.perf_counter()
    return tokens, {
        "impl": "pytorch", "mode": mode, "batch": args.batch, "prompt_tokens": args.prompt,
        "new_tokens": args.tokens * args.batch, "first_token_s": first - start,
        "prefill_tokens_per_s": args.batch * args.prompt / (first - start),
        "decode_tokens_per_s": args.batch * (args.tokens - 1) / max(end - first, 1e-9),
    }


def check(args, w, cfg, prompt, device, dtype, results):
    modes = list(results)
    same = all(torch.equal(results[modes[0]][0], results[m][0]) for m in modes)
    print(f"check: tokens of {', '.join(modes)} {'equal' if same else 'DIFFER'}")
    full = torch.cat([prompt, results[modes[0]][0][:, :-1]], dim=1)[:1]
    on_cpu = Weights({k: v.float().cpu() for k, v in w.t.items()}, cfg["block"])
    with torch.no_grad():
        ref = hrm_logits(on_cpu, cfg, full.cpu())[:, -1]
        dec = EagerDecoder(w, cfg, 1, full.shape[1], device, dtype)
        cached = dec.decode(full[:, : args.prompt])
        for i in range(args.prompt, full.shape[1]):
            cached = dec.decode(full[:, i : i + 1])
    diff = (ref - cached[:, -1].float().cpu()).abs().max().item()
    print(f"check: last position, cached eager against full recompute: max |diff| = {diff:.2e}")
    return same and diff < (5e-2 if dtype == torch.bfloat16 else 1e-3)


def prompt_ids(args, config):
    """The prompt `xtask bench decode --export` used (prompt.json), else random ids; every row alike."""
    saved = args.export / "prompt.json"
    if saved.exists():
        ids = torch.tensor(json.loads(saved.read_text())["ids"][: args.prompt])
        args.prompt = len(ids)
    else:
        ids = torch.randint(0, config["vocab_size"], (args.prompt,), generator=torch.Generator().manual_seed(0))
    return ids.expand(args.batch, -1).clone()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export", type=Path, help="folder written by `hrm export RUN -o DIR`")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt", type=int, default=128, help="prompt tokens: prompt.json's first ones, else random ids")
    p.add_argument("--tokens", type=int, default=256, help="new tokens a row")
    p.add_argument("--mode", default="graphs", help="eager, graphs (static when not on CUDA), or both")
    p.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    p.add_argument("--check", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    config, w = load(args.export, device, dtype)
    cfg = config["model"]
    if cfg["arch"] != "hrm":
        sys.exit("only the HRM is decoded here")
    prompt = prompt_ids(args, config).to(device)
    modes = ["eager", "graphs"] if args.mode == "both" else [args.mode]
    results = {m: run(args, m, w, cfg, prompt, device, dtype) for m in modes}
    rows = []
    for mode, (_, row) in results.items():
        row.update(dtype=args.dtype, device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                   torch=torch.__version__, model=f"hrm d_model={cfg['block']['d_model']}")
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if not args.check or check(args, w, cfg, prompt, device, dtype, results) else 1


if __name__ == "__main__":
    sys.exit(main())
