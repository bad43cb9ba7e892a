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
