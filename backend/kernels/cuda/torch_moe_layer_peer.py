"""A peer for moesim's step model: one MoE transformer layer, forward and backward, in eager PyTorch.

moesim's training rows come out 20-84 % faster than Megatron-Bridge measured for MoE models whose
dense Llama 3 70B it gets within 11 % (README, Accuracy: "A dense model on the same table"). This
times what an MoE layer adds, op by op, on one GPU, the way Megatron-Core's all-to-all dispatcher
runs it without fusions:

  attn-norm   RMSNorm of the residual sum           attn-qkv  one linear to q, k, v (GQA)
  rope        rotary embedding of q and k           attn-core scaled_dot_product_attention, causal
  attn-out    the output projection                 ffn-norm  RMSNorm of the residual sum
  router      linear to every expert's logit        router-topk softmax, top-k, the aux loss terms
  permute     argsort of the chosen experts, the rows gathered expert-major, and the host sync of
              the rows per expert that Megatron-Core's dispatcher makes (tokens_per_expert.tolist())
  expert      a loop over the local experts: fc1 (gate and up), SwiGLU, fc2
  unpermute   each row times its weight, summed back into token order (index_add_)

Simplified: every layer here is fully causal (gpt-oss alternates with 128-token sliding windows: half
its layers attend less); gpt-oss's attention sinks, biases and clamped SwiGLU and T04's FP8 casts are
left out (BF16 throughout).

One GPU stands for one EP rank of the row's plan: it routes its own tokens over all the experts and
computes the rows an EP rank receives under uniform routing (tokens x top-k over its local experts:
expert e's copy goes to local expert e mod local), without the all-to-all itself, which moesim
prices from the links and the kernels' published rates.

Printed: per op, the forward's span on the GPU (CUDA events before and after it on the stream: its
kernels and any wait for the host between them); the forward and the backward as timed by CUDA
events (wall, idle gaps included) and the sum of their kernels' times (busy, torch.profiler): wall -
busy is what the host left the GPU waiting. Medians of the timed iterations after warm-up. Run by backend/gpu-check.sh after the check; compare with
`moesim simulate` of the row's scenario (the "by op" table over the stage's layers). Its permute is
moesim's permute and sort-by-expert together (here one gather straight into expert order; Megatron-Core
gathers by rank, exchanges, then sorts by expert), its unpermute moesim's unsort-by-expert and unpermute.
"""
import contextlib
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F

from torch_peer import elapsed_ms as timed  # the same CUDA-event timing, beside this file

# The EP rank's share of one layer of each validation row's model (../shared/data/published):
# hidden, attention heads, KV heads, head dim, experts in all, local experts (experts / EP), top-k,
# expert FFN, tokens of the rank's micro-batch (MBS 1 x sequence 4096).
SHAPES = {
    "gpt-oss-120b (T03: EP 8, BF16)": dict(hidden=2880, heads=64, kv_heads=8, head_dim=64,
                                            experts=128, local=16, top_k=4, ffn=2880, tokens=4096),
    "qwen3-30b-a3b (T04: EP 16)": dict(hidden=2048, heads=32, kv_heads=4, head_dim=128,
                                        experts=128, local=8, top_k=8, ffn=768, tokens=4096),
}
OPS = ["attn-norm", "attn-qkv", "rope", "attn-core", "attn-out", "ffn-norm", "router",
       "router-topk", "permute", "expert", "unpermute"]
WARMUP, ITERATIONS = 3, 10


class Layer(torch.nn.Module):
    def __init__(self, s, dtype, device):
        super().__init__()
        h, d = s["hidden"], s["head_dim"]
        self.s = s
        self.q_w, self.kv_w = s["heads"] * d, s["kv_heads"] * d
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False, dtype=dtype, device=device)  # noqa: E731
        self.norm1 = torch.nn.Parameter(torch.ones(h, dtype=dtype, device=device))
        self.norm2 = torch.nn.Parameter(torch.ones(h, dtype=dtype, device=device))
        self.qkv = lin(h, self.q_w + 2 * self.kv_w)
        self.out = lin(self.q_w, h)
        self.router = lin(h, s["experts"])
        scale = h ** -0.5
        self.fc1 = torch.nn.Parameter(
            torch.randn(s["local"], 2 * s["ffn"], h, dtype=dtype, device=device) * scale)
        self.fc2 = torch.nn.Parameter(
            torch.randn(s["local"], h, s["ffn"], dtype=dtype, device=device) * s["ffn"] ** -0.5)
        pos = torch.arange(s["tokens"], device=device, dtype=torch.float32)
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=device, dtype=torch.float32) / d))
        angles = torch.outer(pos, inv)
        self.cos, self.sin = angles.cos().to(dtype), angles.sin().to(dtype)
        self.spans = None  # {op: [(start, end) CUDA events]} while timing ops

    @contextlib.contextmanager
    def op(self, name):
        with torch.profiler.record_function(name):
            if self.spans is None:
                yield
                return
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self.spans.setdefault(name, []).append((start, end))

    @staticmethod
    def rms(x, w):
        return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w

    def rope(self, x):  # [tokens, heads, d]
        a, b = x[..., 0::2], x[..., 1::2]
        c, s = self.cos[:, None, :], self.sin[:, None, :]
        return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)

    def forward(self, x, residual):
        s, rf = self.s, self.op
        t, d = s["tokens"], s["head_dim"]
        with rf("attn-norm"):
            residual = x + residual
            y = self.rms(residual, self.norm1)
        with rf("attn-qkv"):
            qkv = self.qkv(y)
        with rf("rope"):
            q, k, v = qkv.split([self.q_w, self.kv_w, self.kv_w], dim=-1)
            q = self.rope(q.view(t, s["heads"], d))
            k = self.rope(k.view(t, s["kv_heads"], d))
            v = v.view(t, s["kv_heads"], d)
        with rf("attn-core"):
            q, k, v = (z.transpose(0, 1).unsqueeze(0) for z in (q, k, v))
            try:  # GQA in the kernel (torch >= 2.5), as TE's attention takes it
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            except TypeError:
                rep = s["heads"] // s["kv_heads"]
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            o = o.squeeze(0).transpose(0, 1).reshape(t, self.q_w)
        with rf("attn-out"):
            a = self.out(o)
        with rf("ffn-norm"):
            residual = a + residual
            y = self.rms(residual, self.norm2)
        with rf("router"):
            logits = self.router(y)
        with rf("router-topk"):
            probs = logits.float().softmax(-1)
            weights, chosen = probs.topk(s["top_k"], dim=-1)
            weights = weights / weights.sum(-1, keepdim=True)
            # The load-balancing loss's terms (Switch: fraction routed x mean probability).
            load = torch.zeros(s["experts"], device=x.device).scatter_add_(
                0, chosen.flatten(), torch.ones(chosen.numel(), device=x.device))
            aux = (load / chosen.numel() * probs.mean(0)).sum() * s["experts"]
        with rf("permute"):
            local = (chosen % s["local"]).flatten()
            order = local.argsort(stable=True)
            rows = y.index_select(0, order // s["top_k"])
            counts = torch.bincount(local, minlength=s["local"]).tolist()  # the dispatcher's sync
        with rf("expert"):
            outs, start = [], 0
            for e, n in enumerate(counts):
                gate_up = rows[start:start + n] @ self.fc1[e].t()
                g, u = gate_up.chunk(2, dim=-1)
                outs.append((F.silu(g) * u) @ self.fc2[e].t())
                start += n
            expert_out = torch.cat(outs)
        with rf("unpermute"):
            weighted = expert_out * weights.flatten()[order].to(expert_out.dtype)[:, None]
            moe = torch.zeros_like(y).index_add_(0, order // s["top_k"], weighted)
        return moe, residual, aux


def kernels_ms(fn, cuda):
    """The sum of the GPU kernels' (and copies') times of fn(), from torch.profiler."""
    if not cuda:
        fn()
        return 0.0
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    us = 0.0
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA and e.name not in OPS:
            us += e.time_range.elapsed_us()
    return us / 1e3


def run(name, s, device, dtype):
    torch.manual_seed(1)
    layer = Layer(s, dtype, device)
    x = torch.randn(s["tokens"], s["hidden"], dtype=dtype, device=device, requires_grad=True)
    res = torch.randn_like(x)
    grad = torch.randn_like(x)
    state = {}

    def forward():
        state["out"] = layer(x, res)

    def backward():
        moe, residual, aux = state["out"]
        torch.autograd.backward([moe, residual, aux], [grad, grad, torch.ones_like(aux)])
        layer.zero_grad(set_to_none=True)
        x.grad = None

    cuda = device.type == "cuda"
    walls = {"forward": [], "backward": []}
    spans = {op: [] for op in OPS}
    for i in range(WARMUP + ITERATIONS):
        layer.spans = {} if cuda and i >= WARMUP else None
        for part, fn in (("forward", forward), ("backward", backward)):
            ms = timed(fn) if cuda else 0.0
            if not cuda:
                fn()
            if i >= WARMUP:
                walls[part].append(ms)
        for op, pairs in (layer.spans or {}).items():
            spans[op].append(sum(a.elapsed_time(b) for a, b in pairs))
    layer.spans = None
    # Busy time: one more forward and backward, each under the profiler.
    forward_busy = kernels_ms(forward, cuda)
    backward_busy = kernels_ms(backward, cuda)
    median = lambda v: statistics.median(v) if v else 0.0  # noqa: E731
    return {"model": name, "shape": s, "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__, "iterations": ITERATIONS,
            "forward_wall_ms": median(walls["forward"]),
            "backward_wall_ms": median(walls["backward"]),
            "forward_busy_ms": forward_busy, "backward_busy_ms": backward_busy,
            "forward_op_ms": {op: median(spans[op]) for op in OPS}}


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and os.environ.get("MOESIM_TORCH_PEER_CPU") != "1":
        print("torch sees no GPU (MOESIM_TORCH_PEER_CPU=1 runs a tiny shape on the CPU)")
        return 77
    shapes = SHAPES
    if device.type != "cuda":  # the control flow only, at a toy size
        shapes = {"toy (cpu)": dict(hidden=64, heads=4, kv_heads=2, head_dim=16, experts=8, local=4,
                                    top_k=2, ffn=32, tokens=32)}
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    results = [run(n, s, device, dtype) for n, s in shapes.items()]
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "torch_moe_layer_peer.json"), "w") as f:
            json.dump(results, f, indent=1)
    for r in results:
        print(f"torch {r['torch']} on {r['device']}: {r['model']}, one layer, median of "
              f"{r['iterations']}")
        print(f"  forward  wall {r['forward_wall_ms']:8.3f} ms  kernels {r['forward_busy_ms']:8.3f} ms")
        print(f"  backward wall {r['backward_wall_ms']:8.3f} ms  kernels {r['backward_busy_ms']:8.3f} ms")
        print("  forward by op, span on the GPU (ms): " +
              ", ".join(f"{op} {ms:.3f}" for op, ms in r["forward_op_ms"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
