#!/usr/bin/env bash
# find_package(moesim) against an installed, moved prefix (moesim issue #19): a project of one
# file (tests/install_consumer/) configured, built and run outside moesim's tree.
# Usage: install_consumer_test.sh BUILD CONSUMER_SOURCE CMAKE GENERATOR CXX [FLAGS]
# (FLAGS: compile and link flags the installed libraries need, -fsanitize=... in a sanitizer build.)
# Exit 77 (ctest: skipped) when configuring and building the consumer take over 90 s.
set -uo pipefail
build=$1 consumer=$2 cmake=$3 generator=$4 cxx=$5 flags=${6:-}
dir=$(cd "$(mktemp -d)" && pwd -P)
trap 'rm -rf "$dir"' EXIT
unset MOESIM_DATA_DIR MOESIM_CATALOG_DIR MOESIM_DEFAULT_SCENARIO

"$cmake" --install "$build" --prefix "$dir/staged" >/dev/null || { echo "FAIL cmake --install"; exit 1; }
mv "$dir/staged" "$dir/prefix"

start=$SECONDS
timeout 90 bash -c '"$0" -S "$1" -B "$2" -G "$3" -DCMAKE_CXX_COMPILER="$4" \
    -DCMAKE_PREFIX_PATH="$5" -DCMAKE_CXX_FLAGS="$6" -DCMAKE_EXE_LINKER_FLAGS="$6" >"$2.log" 2>&1 &&
  "$0" --build "$2" >>"$2.log" 2>&1' \
  "$cmake" "$consumer" "$dir/build" "$generator" "$cxx" "$dir/prefix" "$flags"
status=$?
if [ "$status" -eq 124 ]; then
  echo "skipped: configuring and building the consumer took over 90 s"
  exit 77
fi
if [ "$status" -ne 0 ]; then
  echo "FAIL configure or build of $consumer against $dir/prefix:"
  tail -30 "$dir/build.log"
  exit 1
fi
echo "consumer configured and built in $((SECONDS - start)) s"

# Mixtral-8x7B's expert FFN on one token: 3 GEMMs x 2 x h x f = 6 x 4096 x 14336 = 352,321,536 FLOPs
# (models/model_spec.h), with the catalog from the prefix through MOESIM_DATA_DIR.
expected="mixtral-8x7b: expert FFN of one token = 352321536 FLOPs"
out=$(cd / && MOESIM_DATA_DIR="$dir/prefix/share/moesim" "$dir/build/consumer" 2>&1)
if [ "$out" != "$expected" ]; then
  echo "FAIL consumer printed: $out"
  echo "  expected: $expected"
  exit 1
fi
echo "ok   $out"
