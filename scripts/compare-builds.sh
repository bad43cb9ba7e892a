#!/usr/bin/env bash
# Compares what two builds of moesim print, for a refactoring that must not change any output:
# every scenario in scenarios/ at both fidelities (--json, byte for byte), every subcommand's text
# output on the README's examples (byte for byte), and the Perfetto timeline (equal as parsed JSON).
#
#   scripts/compare-builds.sh OLD/build/sim/moesim NEW/build/sim/moesim
#
# Prints one line per comparison and a closing "N passed, N failed"; exits 1 on any difference.
# Runs from the repository root (scenario paths are relative to it). Slow scenarios (a whole step
# on 2,048 GPUs at flow fidelity) are included: expect several minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 2 ]; then
  echo "usage: $0 OLD_MOESIM NEW_MOESIM" >&2
  exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
# Each build prints its own source tree in paths (the model catalog, the default scenario): the
# tree above build/sim/moesim is replaced by <src> before comparing.
old_src=$(realpath "$(dirname "$old")/../..")
new_src=$(realpath "$(dirname "$new")/../..")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# compare NAME ARGS...: runs both binaries with ARGS, compares stdout, stderr and exit status.
compare() {
  local name=$1
  shift
  (cd "$work" && "$old" "$@" >old.out 2>old.err; echo $? >old.rc)
  (cd "$work" && "$new" "$@" >new.out 2>new.err; echo $? >new.rc)
  sed -i -e "s#$old_src#<src>#g" -e "s#$new_src#<src>#g" "$work"/old.out "$work"/old.err \
    "$work"/new.out "$work"/new.err
  # moesim plan's progress lines carry elapsed times (and old builds printed none).
  sed -i -e '/^moesim plan: plans /d' "$work"/old.err "$work"/new.err
  local why=""
  cmp -s "$work/old.out" "$work/new.out" || why="stdout differs"
  cmp -s "$work/old.err" "$work/new.err" || why="${why:+$why, }stderr differs"
  cmp -s "$work/old.rc" "$work/new.rc" || why="${why:+$why, }exit status $(cat "$work/old.rc") -> $(cat "$work/new.rc")"
  if [ -z "$why" ]; then
    passed=$((passed + 1))
    echo "same   $name"
  else
    failed=$((failed + 1))
    echo "DIFF   $name: $why"
    diff "$work/old.out" "$work/new.out" | head -20
  fi
}

# compare_json_file NAME FILE ARGS...: both binaries write FILE (a path in ARGS); the two files
# must be equal as parsed JSON (key order and number spelling may differ).
compare_json_file() {
  local name=$1 file=$2
  shift 2
  (cd "$work" && "$old" "$@" >/dev/null 2>&1 && mv "$file" old.json)
  (cd "$work" && "$new" "$@" >/dev/null 2>&1 && mv "$file" new.json)
  if python3 - "$work/old.json" "$work/new.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
PY
  then
    passed=$((passed + 1))
    echo "same   $name (as parsed JSON)"
  else
    failed=$((failed + 1))
    echo "DIFF   $name: timeline JSON differs (or was not written)"
  fi
}

root=$(pwd)
for s in scenarios/*.pbtxt; do
  for f in analytical flow; do
    compare "simulate $s --fidelity $f --json" simulate "$root/$s" --fidelity "$f" --json
  done
  compare "simulate $s (text)" simulate "$root/$s"
done
compare "moesim (default scenario)"
compare_json_file "timeline seed_example" t.json simulate "$root/scenarios/seed_example.pbtxt" --timeline t.json
compare_json_file "timeline mixtral step" t.json simulate "$root/scenarios/mixtral-8x7b-h100-64.pbtxt" --timeline t.json
compare_json_file "timeline olmoe flow" t.json simulate "$root/scenarios/olmoe_measured_loads.pbtxt" --fidelity flow --timeline t.json

compare "topo list" topo list
for c in dgx-h100 "$root"/scenarios/clusters/*.pbtxt "$root"/../shared/data/nccl_topology/*.xml; do
  compare "topo show $(basename "$c")" topo show "$c"
  compare "topo show $(basename "$c") --json" topo show "$c" --json
  compare "topo dot $(basename "$c")" topo dot "$c"
done
compare "topo route hgx-h800-rail 0 9" topo route "$root/scenarios/clusters/hgx-h800-rail.pbtxt" 0 9
compare "model list" model list
compare "model show deepseek-v3" model show deepseek-v3
compare "model show mixtral --json" model show mixtral-8x7b --json
compare "model compare" model compare "$root/models/examples/dense-40b.pbtxt" "$root/models/examples/moe-120b-8x14b-top2.pbtxt"
for op in allreduce allgather reducescatter alltoall sendrecv; do
  for f in analytical flow; do
    compare "collective $op dgx-h100 $f" collective --op "$op" --cluster dgx-h100 -b 1K -e 64M -f 32 --fidelity "$f"
    compare "collective $op hgx-h800-rail 16 $f" collective --op "$op" \
      --cluster "$root/scenarios/clusters/hgx-h800-rail.pbtxt" --gpus 16 -b 1K -e 64M -f 32 --fidelity "$f"
  done
done
compare "collective allreduce tree --json" collective --op allreduce --algo tree --cluster dgx-h100 -b 1K -e 1G -f 32 --json
compare "collective alltoall hierarchical fat-tree" collective --op alltoall --algo hierarchical \
  --cluster "$root/scenarios/clusters/dgx-h100-fat-tree-2to1.pbtxt" -b 1M -e 64M -f 4 --fidelity flow
compare "trace gen" trace gen --model olmoe-1b-7b --tokens 4096 --ranks 8 --steps 2 --layers 2 \
  --distribution zipf --alpha 1.2 --seed 1 -o g.trace
compare "trace stats" trace stats "$root/scenarios/traces/olmoe-zipf-4steps.trace" --ep 8 --model olmoe-1b-7b
compare "plan mixtral" plan --model mixtral-8x7b --cluster dgx-h100 --gpus 64 --global-batch 256 --seq-len 4096 --top 20
compare "plan mixtral csv etp" plan --model mixtral-8x7b --cluster dgx-h100 --gpus 64 --global-batch 256 \
  --seq-len 4096 --expert-tp --csv --top 2000
compare "plan mixtral flow hierarchical" plan --model mixtral-8x7b --cluster dgx-h100 --gpus 16 \
  --global-batch 64 --seq-len 4096 --alltoall-algo hierarchical --fidelity flow --top 10 --threads 2
compare "plan olmoe trace" plan --model olmoe-1b-7b --cluster dgx-h100 --gpus 16 --global-batch 64 \
  --seq-len 2048 --trace "$root/scenarios/traces/olmoe-zipf-4steps.trace" --csv --top 1000
for held in scenarios/calibration/heldout/*.pbtxt; do
  b=$(basename "$held" .pbtxt)
  compare "validate $b" validate "$root/$held" --measured "$root/results/calibration/heldout/$b.pb" \
    --hardware "$root/results/calibration/cpu-profile.pbtxt"
done
scenario_args=()
for s in "$root"/scenarios/calibration/fit/*.pbtxt; do scenario_args+=(--scenario "$s"); done
compare "calibrate cpu fit" calibrate "$root"/results/calibration/fit/*.pb "${scenario_args[@]}" \
  --out profile.pbtxt
compare "bad input" simulate "$root/tests/fixtures/bad/unknown_model.pbtxt"
compare "--help" --help
for cmd in simulate topo collective trace model plan calibrate validate; do
  compare "$cmd --help" "$cmd" --help
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
