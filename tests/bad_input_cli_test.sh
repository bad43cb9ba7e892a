#!/usr/bin/env bash
# The `moesim` binary itself on hostile input (moesim issue #17): each case exits 1 with exactly one
# line on stderr, the one expected: no protobuf log line first, no "terminate called", no crash.
# Writes cut short by the file-size limit (EFBIG, as a full disk gives ENOSPC; SIGXFSZ ignored,
# no root needed) leave no file behind. Usage: bad_input_cli_test.sh MOESIM SOURCE_DIR
set -uo pipefail
moesim=$1 source=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0

# expect NAME EXPECTED_STDERR COMMAND...: exit status 1 and exactly EXPECTED_STDERR on stderr.
expect() {
  local name=$1 expected=$2
  shift 2
  local err status
  err=$("$@" 2>&1 >/dev/null)
  status=$?
  if [ "$status" -ne 1 ] || [ "$err" != "$expected" ]; then
    echo "FAIL $name: exit status $status"
    echo "  got:      $err"
    echo "  expected: $expected"
    failed=1
  else
    echo "ok   $name"
  fi
}

# limited CMD...: CMD with files capped at 1 block and SIGXFSZ ignored, so a write past it fails.
limited() { (trap '' XFSZ; ulimit -f 1; exec "$@"); }

bad=$source/tests/fixtures/bad
expect dev-zero "moesim: error: /dev/zero: is a character device; valid: a regular file" \
  "$moesim" simulate /dev/zero
expect layer-overflow "moesim: error: $bad/trace_layer_overflow.moetrace: record 0 (byte 7): layer = 4294967295: beyond the trace format's limit of 1024 layers (kMaxTraceLayers); valid: 0..1023" \
  "$moesim" trace stats "$bad/trace_layer_overflow.moetrace"
printf '\x0a\x03\x41\xff\x42' > "$dir/bad_utf8.pb"
expect protobuf-folded "moesim: error: $dir/bad_utf8.pb: not a Result (proto/result.proto): String field 'moesim.pb.Result.scenario' contains invalid UTF-8 data when parsing a protocol buffer. Use the 'bytes' type if you intend to send raw bytes.; valid: what \`moebench run --out\` or \`moebench gemm --out\` writes (binary), or its --json in a file ending .json" \
  "$moesim" calibrate "$dir/bad_utf8.pb" --out "$dir/p.pbtxt"
rm -f "$dir/bad_utf8.pb"

# Figures past what moesim can compute with (issue #17): each refused by the range its field
# declares (proto/range.proto), wherever it is written.
expect profile-denormal-rate "moesim: error: $bad/profile_denormal_rate.pbtxt:5:3: gpu.gemm_peak_tflops = 5e-324: out of range; valid: 0.001 to 100000 TFLOP/s" \
  "$moesim" simulate "$source/scenarios/default.pbtxt" --hardware "$bad/profile_denormal_rate.pbtxt"
expect cluster-nan-bandwidth "moesim: error: $bad/cluster_nan_bandwidth.pbtxt:6:12: node.nvlink.bandwidth_gbps = nan: not a finite number; valid: 0.001 to 1000000 GB/s" \
  "$moesim" topo show "$bad/cluster_nan_bandwidth.pbtxt"
expect cluster-nodes-overflow "moesim: error: $bad/cluster_nodes_overflow.pbtxt:3:1: nodes = 4294967295: out of range; valid: 1 to 131072" \
  "$moesim" topo show "$bad/cluster_nodes_overflow.pbtxt"
expect nccl-link-speed "moesim: error: $bad/nccl_link_speed_1e20.xml:4:1: <pci link_speed=\"1e20 GT/s PCIe\" link_width=\"16\"> (GB/s) = 196923076923076935680: out of range; valid: 0.001 to 1000000 GB/s" \
  "$moesim" topo show "$bad/nccl_link_speed_1e20.xml" --gpu h100-sxm
expect global-batch-1e12 "moesim: error: $bad/scenario_global_batch_1e12.pbtxt:8:3: step.global_batch = 1000000000000: out of range; valid: 0 to 16777216" \
  "$moesim" simulate "$bad/scenario_global_batch_1e12.pbtxt"
expect tokens-1e8 "moesim: error: $bad/scenario_tokens_1e8.pbtxt:5:12: workload.tokens_per_gpu = 100000000: out of range; valid: 0 to 16777216" \
  "$moesim" simulate "$bad/scenario_tokens_1e8.pbtxt"
expect shared-experts-1e9 "moesim: error: $bad/model_shared_experts_1e9.pbtxt:8:1: num_shared_experts = 1000000000: out of range; valid: 0 to 1024" \
  "$moesim" model show "$bad/model_shared_experts_1e9.pbtxt"
expect plan-global-batch "moesim: error: --global-batch = 1000000000000: out of range; valid: 0 to 16777216" \
  "$moesim" plan --model mixtral-8x7b --global-batch 1000000000000
expect plan-gpus "moesim: error: --gpus = 1000000000: out of range; valid: 1 to 1048576" \
  "$moesim" plan --model mixtral-8x7b --gpus 1000000000 --global-batch 64
expect collective-huge "moesim: error: -e = 2000000G: too large; valid: bytes, optionally with K, M or G (1024 powers), up to 1 PiB" \
  "$moesim" collective --op allreduce -b 1G -e 2000000G
expect collective-negative "moesim: error: -b = -5: not a size; valid: bytes, optionally with K, M or G (1024 powers), up to 1 PiB" \
  "$moesim" collective --op allreduce -b -5 -e 1G
expect model-seq-len "moesim: error: --seq-len = 1000000000000: out of range; valid: 0 to 16777216" \
  "$moesim" model show mixtral-8x7b --seq-len 1000000000000
expect step-kernel-flops "moesim: error: micro_batch x seq_len = 2 x 16777216: one kernel of a micro-batch could do 2.31e+19 FLOPs, past the 64-bit counts kernels are timed in (1.84e+19); valid: a smaller micro-batch or sequence length" \
  "$moesim" simulate "$bad/scenario_kernel_flops.pbtxt"
# (--quiet: plan search's progress lines, on stderr in a log, come before the error.)
expect plan-none-simulated "moesim: error: none of the 240 plans could be simulated; the first: micro_batch x seq_len = 1 x 16777216: one kernel of a micro-batch could do 5.76e+19 FLOPs, past the 64-bit counts kernels are timed in (1.84e+19); valid: a smaller micro-batch or sequence length" \
  "$moesim" plan --model deepseek-v3 --global-batch 64 --seq-len 16777216 --quiet
# moesim sweep (issue #23): a bad field path and a bad value, each located at its --set with what
# is valid there, before any point runs.
expect sweep-bad-path "moesim: error: --set plan.epp=8: plan.epp: no field \"epp\" in plan (ParallelPlan) (did you mean \"pp\"?); valid: tp, cp, dp, pp, ep, etp, order, pp_first_stage_layers, pp_last_stage_layers, placement" \
  "$moesim" sweep "$source/scenarios/mixtral-8x7b-h100-64.pbtxt" --set plan.epp=8
expect sweep-bad-value "moesim: error: --set plan.ep=0: plan.ep = 0: out of range; valid: 1 to 1048576" \
  "$moesim" sweep "$source/scenarios/mixtral-8x7b-h100-64.pbtxt" --set plan.ep=8,0
expect nccl-version "moesim: error: --nccl-version = \"2.x\": is not an NCCL release as major.minor; valid: a release such as \"2.28\" or \"2.28.9\"" \
  "$moesim" collective --op sendrecv --nccl-version 2.x
expect pipeline-overlap-1f1b "moesim: error: --set step.overlap.pipeline=true: step.overlap.pipeline = true: Megatron-Core overlaps pipeline sends only in its interleaved schedule (overlap_p2p_comm); this step's schedule is 1f1b; valid: false, or with schedule: \"interleaved\"" \
  "$moesim" sweep "$source/scenarios/mixtral-8x7b-h100-64.pbtxt" --quiet --set step.overlap.pipeline=true
expect trace-gen-tokens "moesim: error: --tokens = 1000000000000: out of range; valid: 0 to 16777216" \
  "$moesim" trace gen --experts 8 --top-k 2 --tokens 1000000000000 -o "$dir/never.moetrace"
# 4294967295 steps x 1 layer x 1 rank x (3 x 1000 x 2 + 32) bytes = 23.6 TiB: more than any folder here.
err=$("$moesim" trace gen --experts 8 --top-k 2 --tokens 1000 --steps 4294967295 -o "$dir/never.moetrace" 2>&1 >/dev/null)
status=$?
if [ "$status" -eq 1 ] && [[ "$err" == "moesim: error: --output = $dir/never.moetrace: the trace needs about 23.6 TiB but its folder has "*" free; valid: fewer steps, layers, ranks or tokens, or a folder with room" ]]; then
  echo "ok   trace-gen-steps"
else
  echo "FAIL trace-gen-steps: exit status $status"
  echo "  got: $err"
  failed=1
fi

# One record of 10,000 tokens x top-2 (about 20 KB) does not fit in one block.
expect trace-gen-cut "moesim: error: $dir/t.moetrace: cannot write the trace file: File too large (record 0)" \
  limited "$moesim" trace gen --experts 8 --top-k 2 --tokens 10000 -o "$dir/t.moetrace"
expect timeline-cut "moesim: error: $dir/t.json: cannot write the timeline: File too large" \
  limited "$moesim" simulate "$source/scenarios/seed_example.pbtxt" --timeline "$dir/t.json"
left=$(ls -A "$dir")
if [ -n "$left" ]; then
  echo "FAIL files left behind: $left"
  failed=1
else
  echo "ok   no file left behind"
fi
exit $failed
