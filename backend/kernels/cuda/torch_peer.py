"""A peer for gpu_kernel_check's Mixtral mode: the same expert FFN in PyTorch on the same GPU.

Mixtral-8x7B's experts (8, hidden 4096, ffn 14336, top-2) at uniform load, bf16, gate and up fused
as [2*ffn x hidden] per expert like moebench's layout: a loop over experts of two matmuls and the
SwiGLU, and torch._grouped_mm where this torch has it. Median of 20 timed runs after 3 warm-ups
(CUDA events). Run by backend/gpu-check.sh after the check passes; prints a table.
"""
import statistics

import torch
import torch.nn.functional as F

EXPERTS, HIDDEN, FFN = 8, 4096, 14336


def elapsed_ms(fn):
    """fn() timed on the current stream by CUDA events, in milliseconds."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def median_ms(fn, warmup=3, iterations=20):
    for _ in range(warmup):
        fn()
    return statistics.median(elapsed_ms(fn) for _ in range(iterations))


def main():
    assert torch.cuda.is_available(), "torch sees no GPU"
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(1)
    w1 = (torch.rand(EXPERTS, 2 * FFN, HIDDEN, device=dev, generator=gen) * 2 - 1) / HIDDEN**0.5
    w2 = (torch.rand(EXPERTS, HIDDEN, FFN, device=dev, generator=gen) * 2 - 1) / FFN**0.5
    w1, w2 = w1.bfloat16(), w2.bfloat16()
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}: Mixtral-8x7B expert FFN")
    print(f"{'method':<22} {'tokens':>7} {'ms':>9} {'TFLOP/s':>8}")
    for tokens in (4096, 16384):
        rows = 2 * tokens // EXPERTS
        x = (torch.rand(EXPERTS * rows, HIDDEN, device=dev, generator=gen) * 2 - 1).bfloat16()
        flops = 2.0 * EXPERTS * rows * HIDDEN * 3 * FFN

        def loop():
            for e in range(EXPERTS):
                h = x[e * rows:(e + 1) * rows] @ w1[e].T
                a = F.silu(h[:, :FFN]) * h[:, FFN:]
                a @ w2[e].T

        ms = median_ms(loop)
        print(f"{'loop over experts':<22} {tokens:>7} {ms:>9.3f} {flops / ms / 1e9:>8.1f}")
        if hasattr(torch, "_grouped_mm"):
            offs = torch.arange(1, EXPERTS + 1, device=dev, dtype=torch.int32) * rows
            w1t, w2t = w1.transpose(-2, -1), w2.transpose(-2, -1)

            def grouped():
                h = torch._grouped_mm(x, w1t, offs=offs)
                a = F.silu(h[:, :FFN]) * h[:, FFN:]
                torch._grouped_mm(a, w2t, offs=offs)

            try:
                ms = median_ms(grouped)
                print(f"{'torch._grouped_mm':<22} {tokens:>7} {ms:>9.3f} {flops / ms / 1e9:>8.1f}")
            except Exception as e:  # noqa: BLE001 - a peer is optional; say why it did not run
                print(f"torch._grouped_mm: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
