#!/usr/bin/env python3
"""Whole nccl-tests curves of one H100 node: moesim against every size from 1 MiB to 8 GiB.

A cross-check, not rows of the published validation set (scripts/validate-published.py takes one
or two sizes of a curve): Together's nccl-tests run on one 8 x H100 SXM node, NCCL 2.26.2,
NCCL_ALGO=RING, -g 8 (togethercomputer/together-nccl-tests at 6698e53,
benchmarks/H100/results/20260305_220043: all_reduce_ring.out, all_gather_ring.out,
reduce_scatter_ring.out; the validation rows C08 and C09 are two sizes of the first). It says how
close moesim's protocol choice, latencies and achieved NVLink rate are across the sizes a step's TP
and DP collectives take (a TP all-gather of a 4k-token micro-batch at hidden 8192 in BF16 is 64 MiB).

    python3 scripts/crosscheck-nccl-curves.py --moesim build/sim/moesim [--check]

Prints one table per collective (out-of-place busbw, the source's column) and the median and worst
|error| of each. --check exits 1 when a size's |error| passes its op's bound (BOUND_PCT, the bound
committed with these figures: README "Accuracy").
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ("https://github.com/togethercomputer/together-nccl-tests/blob/"
          "6698e53c1dc519f8ab54f72193630849f5abf178/benchmarks/H100/results/20260305_220043/")

# Out-of-place busbw (GB/s) by size (B), copied from the files above (1 MiB to 8 GiB; below 1 MiB
# the -g 8 launch floor rules, which row C08 checks).
CURVES = {
    "allreduce": ("all_reduce_ring.out", {
        1 << 20: 39.44, 1 << 21: 87.26, 1 << 22: 138.26, 1 << 23: 182.39, 1 << 24: 231.88,
        1 << 25: 274.45, 1 << 26: 318.55, 1 << 27: 334.33, 1 << 28: 347.64, 1 << 29: 355.65,
        1 << 30: 360.07, 1 << 31: 363.84, 1 << 32: 366.72, 1 << 33: 368.09}),
    "allgather": ("all_gather_ring.out", {
        1 << 20: 22.02, 1 << 21: 44.24, 1 << 22: 88.77, 1 << 23: 156.12, 1 << 24: 207.36,
        1 << 25: 234.03, 1 << 26: 278.45, 1 << 27: 298.43, 1 << 28: 320.49, 1 << 29: 335.70,
        1 << 30: 344.53, 1 << 31: 350.36, 1 << 32: 355.23, 1 << 33: 357.90}),
    "reducescatter": ("reduce_scatter_ring.out", {
        1 << 20: 22.60, 1 << 21: 44.05, 1 << 22: 88.02, 1 << 23: 145.53, 1 << 24: 203.96,
        1 << 25: 247.18, 1 << 26: 284.43, 1 << 27: 307.89, 1 << 28: 327.04, 1 << 29: 337.19,
        1 << 30: 346.49, 1 << 31: 351.01, 1 << 32: 359.62, 1 << 33: 363.18}),
}
# |error| bound per size, set from the run the README quotes (rounded up to 5 %).
BOUND_PCT = {"allreduce": 50.0, "allgather": 35.0, "reducescatter": 35.0}


def predict(moesim, op):
    out = subprocess.run(
        [moesim, "collective", "--op", op, "--cluster", "dgx-h100", "--algo", "ring",
         "-b", "1M", "-e", "8G", "-f", "2", "-g", "8", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    return {int(r["sizeBytes"]): r for r in json.loads(out)["rows"]}


def size_label(b):
    return f"{b >> 30} GiB" if b >= 1 << 30 else f"{b >> 20} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moesim", default=str(ROOT / "build" / "sim" / "moesim"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when a size's |error| passes its op's bound")
    args = ap.parse_args()
    failed = []
    for op, (name, measured) in CURVES.items():
        rows = predict(args.moesim, op)
        print(f"\n{op} ({SOURCE}{name}), busbw GB/s\n")
        print("| size | measured | moesim | protocol | error |")
        print("|---|---|---|---|---|")
        errors = []
        for size, busbw in measured.items():
            r = rows[size]
            error = (float(r["busbwGbps"]) / busbw - 1) * 100
            errors.append(abs(error))
            print(f"| {size_label(size)} | {busbw:.2f} | {float(r['busbwGbps']):.2f} "
                  f"| {r['protocol']} | {error:+.1f} % |")
            if abs(error) > BOUND_PCT[op]:
                failed.append(f"{op} {size_label(size)}: |error| {abs(error):.1f} % past "
                              f"{BOUND_PCT[op]:g} %")
        print(f"\n{op}: median |error| {statistics.median(errors):.1f} %, "
              f"worst {max(errors):.1f} %")
    if args.check and failed:
        sys.exit("FAILED:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main()
