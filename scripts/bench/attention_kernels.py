# libtorch's attention kernels at medium-100m's shape (B 32, H 12, S 512, D 64, bf16, causal), q/k/v as
# [B, H, S, D] views of one [B, S, 3, H, D] projection (hrm's layout): forward and backward of the
# memory-efficient, flash and cuDNN kernels, timed alone and through autograd, and cuDNN's gradients
# against the f32 math kernel. Usage (on a CUDA machine): python scripts/bench/attention_kernels.py
import torch, time
aten = torch.ops.aten
B, H, S, D = 32, 12, 512, 64
torch.manual_seed(0)
dev = "cuda"
def qkv():
    base = torch.randn(B, S, 3, H, D, device=dev, dtype=torch.bfloat16)
    return [base[:, :, i].transpose(1, 2) for i in range(3)]
q, k, v = qkv()
g = torch.randn(B, S, H, D, device=dev, dtype=torch.bfloat16).transpose(1, 2)

def timeit(f, n=50):
    for _ in range(5): f()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): f()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1e6

eff = lambda: aten._scaled_dot_product_efficient_attention(q, k, v, None, True, 0.0, True)
fl = lambda: aten._scaled_dot_product_flash_attention(q, k, v, 0.0, True)
cu = lambda: aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, True)
eo = eff(); fo = fl(); co = cu()
print("eff out", eo[0].shape, eo[0].stride(), "lse", eo[1].shape, eo[1].dtype)
print("flash out", fo[0].shape, fo[0].stride(), "lse", fo[1].shape, fo[1].dtype)
print("cudnn out", co[0].shape, co[0].stride(), "lse", co[1].shape, co[1].stride(), co[1].dtype,
      "seed", co[6].shape, co[6].dtype, co[6].device, "offset", co[7].shape)
print("lse eff vs cudnn", (eo[1][..., :S] - co[1].reshape(B, H, S)).abs().max().item())
print("lse flash vs cudnn", (fo[1] - co[1].reshape(B, H, S)).abs().max().item())
# The efficient backward takes [B, S, H, D] views; cuDNN's is timed through autograd and the
# profiler below (its schema wants tensors where Python has no undefined one to pass).
e_b = lambda: aten._efficient_attention_backward(g.transpose(1, 2), q.transpose(1, 2), k.transpose(1, 2),
    v.transpose(1, 2), None, eo[0].transpose(1, 2), None, None, S, S, eo[1], 0.0, eo[2], eo[3], 1, False)
f_b = lambda: aten._scaled_dot_product_flash_attention_backward(g, q, k, v, fo[0], fo[1], fo[2], fo[3], S, S, 0.0,
    True, fo[6], fo[7])
for name, f in [("eff fwd", eff), ("flash fwd", fl), ("cudnn fwd", cu), ("eff bwd", e_b), ("flash bwd", f_b)]:
    print(f"{name:10s} {timeit(f):8.1f} us")


def autograd_step(backend):
    base = torch.randn(B, S, 3, H, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
    qq, kk, vv = [base[:, :, i].transpose(1, 2) for i in range(3)]
    def f():
        with torch.nn.attention.sdpa_kernel(backend):
            o = torch.nn.functional.scaled_dot_product_attention(qq, kk, vv, is_causal=True)
        o.backward(g)
    return f
SB = torch.nn.attention.SDPBackend
for name, be in [("efficient", SB.EFFICIENT_ATTENTION), ("flash", SB.FLASH_ATTENTION), ("cudnn", SB.CUDNN_ATTENTION)]:
    print(f"autograd fwd+bwd {name:10s} {timeit(autograd_step(be)):8.1f} us")
# correctness of cudnn through autograd
qf, kf, vf = [t.detach().float().requires_grad_() for t in (q, k, v)]
with torch.nn.attention.sdpa_kernel(SB.MATH):
    ref = torch.nn.functional.scaled_dot_product_attention(qf, kf, vf, is_causal=True)
ref.backward(g.float())
qb, kb, vb = [t.detach().clone().requires_grad_() for t in (q, k, v)]
with torch.nn.attention.sdpa_kernel(SB.CUDNN_ATTENTION):
    o = torch.nn.functional.scaled_dot_product_attention(qb, kb, vb, is_causal=True)
o.backward(g)
print("cudnn autograd err out", (o.float() - ref).abs().max().item(), "dq dk dv", [(a.grad.float() - b.grad).abs().max().item() for a, b in zip((qb, kb, vb), (qf, kf, vf))])
print("grad strides", [tuple(t.grad.stride()) for t in (qb, kb, vb)])
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
    autograd_step(SB.CUDNN_ATTENTION)()
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12))
