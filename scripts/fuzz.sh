#!/usr/bin/env bash
# Runs the libFuzzer harnesses (tests/fuzz/, built with -DMOESIM_FUZZ=ON) for a fixed time each.
#
#   scripts/fuzz.sh [-b BUILD_DIR] [-t SECONDS] [-j JOBS] [-o OUT_DIR] [HARNESS ...]
#
# HARNESS: scenario cluster model profile nccl_xml trace counts result import_megatron_jsonl
# import_csv import_npy (default: all). -b: the build folder (build-asan). -t: seconds per harness
# (20). -j: harnesses run at once, each on one core (default: the cores, nproc); every harness
# still gets its full -t. -o: where each harness's log, corpus and crash inputs go (default: a
# temporary folder, removed at the end unless something failed).
#
# Each harness starts from a seed corpus assembled here from the files of its format in
# scenarios/, tests/fixtures/ (bad/ included), models/, results/ and ../shared/data/ (when
# present), plus a dictionary: the field names of proto/*.proto for the text and JSON formats,
# tests/fuzz/nccl_xml.dict for the XML. Exit status 1 when any harness found a crash, a hang
# (-timeout=10 s for one input), a leak or too much memory (-rss_limit_mb=2048); the log names the
# input that did it (OUT_DIR/HARNESS/crash-*, leak-*, timeout-*, oom-*).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=build-asan
seconds=20
jobs=$(nproc)
out=""
while getopts "b:t:j:o:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,17p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
all=(scenario cluster model profile nccl_xml trace counts result import_megatron_jsonl import_csv
     import_npy)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")

keep_out=1
if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/moesim-fuzz.XXXXXX")
  keep_out=0
fi
mkdir -p "$out"
shared="$root/../shared/data"
# The harnesses sit in $build/tests/fuzz, where ../share/moesim is not the build tree's data folder:
# point them at it, so scenarios that name a catalog model get past loading it.
export MOESIM_DATA_DIR="$(cd "$build" && pwd)/share/moesim"

# seeds HARNESS: the seed files of the harness's format, one per line (missing ones skipped).
seeds() {
  local pbtxt_scenarios="find scenarios -name '*.pbtxt' -not -path 'scenarios/clusters/*'"
  case $1 in
    scenario) eval "$pbtxt_scenarios"; ls tests/fixtures/bad/*.pbtxt ;;
    cluster) ls scenarios/clusters/*.pbtxt tests/fixtures/two_nodes_4gpu.pbtxt ;;
    model) ls models/catalog/*.pbtxt models/examples/*.pbtxt tests/fixtures/models/*.pbtxt \
              tests/fixtures/bad/model_*.pbtxt ;;
    profile) ls tests/fixtures/hardware/*.pbtxt; find results/calibration -name '*profile*.pbtxt' ;;
    nccl_xml) ls tests/fixtures/bad/*.xml; ls "$shared"/nccl_topology/*.xml 2>/dev/null || true ;;
    trace) ls scenarios/traces/* tests/fixtures/bad/*.moetrace ;;
    counts) ls "$shared"/routing/*.csv 2>/dev/null || true ;;
    result) ls results/calibration/fit/*.pb results/calibration/heldout/*.pb \
               results/calibration/a2a/*.json tests/fixtures/bad/measured_*.json ;;
    import_megatron_jsonl) ls tests/fixtures/traces/*.jsonl tests/fixtures/bad/*.jsonl ;;
    import_csv) ls tests/fixtures/traces/*.csv tests/fixtures/bad/*.csv ;;
    import_npy) ls tests/fixtures/traces/*.npy ;;
    *) echo "fuzz.sh: unknown harness '$1'; valid: ${all[*]}" >&2; return 1 ;;
  esac
}

# dictionary HARNESS FILE: writes the harness's libFuzzer dictionary to FILE.
dictionary() {
  local fields
  fields=$(grep -hoE '^\s*(optional |repeated )?[a-zA-Z0-9_.]+ [a-z_0-9]+ = [0-9]+' proto/*.proto |
           awk '{print $(NF-2)}' | sort -u)
  case $1 in
    nccl_xml) cp tests/fuzz/nccl_xml.dict "$2" ;;
    result|import_megatron_jsonl)  # JSON: protobuf's JSON names (lowerCamelCase) and the originals
      for f in $fields; do
        local camel
        camel=$(echo "$f" | sed -E 's/_([a-z0-9])/\U\1/g')
        printf '"\\"%s\\":"\n"\\"%s\\":"\n' "$f" "$camel"
      done > "$2" ;;
    scenario|cluster|model|profile)  # protobuf text format
      for f in $fields; do printf '"%s: "\n"%s {"\n' "$f" "$f"; done > "$2" ;;
    *) : > "$2" ;;
  esac
}

# run_harness HARNESS: fuzzes it for $seconds s; writes its log, its exit status (dir/status) and
# the lines to print (dir/summary), so that harnesses run side by side print in order.
run_harness() {
  local h=$1 bin="$build/tests/fuzz/fuzz_$1" dir="$out/$1" n=0 status=0 f
  mkdir -p "$dir/corpus" "$dir/seeds"
  while IFS= read -r f; do
    [ -f "$f" ] || continue
    cp "$f" "$dir/seeds/$(echo "$f" | tr '/' '_')"
    n=$((n + 1))
  done < <(seeds "$h")
  dictionary "$h" "$dir/dict"
  local dict=()
  [ -s "$dir/dict" ] && dict=("-dict=$dir/dict")
  # The input file a harness rewrites goes in the harness's folder, not in a shared /tmp.
  TMPDIR="$dir" UBSAN_OPTIONS=print_stacktrace=1 \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$dir/" "${dict[@]}" "$dir/corpus" "$dir/seeds" \
      > "$dir/log" 2>&1 || status=$?
  {
    echo "fuzz.sh: $h for ${seconds} s from $n seeds"
    # The last status line: executions, coverage (cov: edges, ft: features), corpus, exec/s.
    grep -E '^#[0-9]+' "$dir/log" | tail -1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$dir/log" || true
    if [ $status -ne 0 ]; then
      echo "fuzz.sh: $h FAILED (exit $status); log $dir/log:"
      grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$dir/log" | head -20 || true
    fi
  } > "$dir/summary"
  echo "$status" > "$dir/status"
}

for h in "${harnesses[@]}"; do
  if [ ! -x "$build/tests/fuzz/fuzz_$h" ]; then
    echo "fuzz.sh: $build/tests/fuzz/fuzz_$h not built (cmake -DMOESIM_FUZZ=ON, target moesim_fuzzers)" >&2
    exit 1
  fi
done
running=0
for h in "${harnesses[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_harness "$h" &
  running=$((running + 1))
done
wait
failed=()
for h in "${harnesses[@]}"; do
  cat "$out/$h/summary" 2>/dev/null || echo "fuzz.sh: $h did not finish (see $out/$h)"
  [ -f "$out/$h/status" ] && [ "$(cat "$out/$h/status")" = 0 ] || failed+=("$h")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} harness(es) failed: ${failed[*]} (logs and inputs in $out)" >&2
  exit 1
fi
echo "fuzz.sh: ${#harnesses[@]} harness(es), ${seconds} s each: no crash, hang or leak"
[ $keep_out -eq 1 ] || rm -rf "$out"
