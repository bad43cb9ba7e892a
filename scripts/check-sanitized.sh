#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer, then every fuzz harness for a
# short fixed time (README "Fuzzing and sanitizers"; .ci/run runs it after the Release tests).
#
#   scripts/check-sanitized.sh            # build-asan: configure, build, ctest, fuzz 10 s each
#   MOESIM_FUZZ_SECONDS=60 scripts/check-sanitized.sh
#
# One clang build folder, build-asan (MOESIM_SANITIZE=ON, MOESIM_FUZZ=ON, CUDA off), holding only
# what the tests and the harnesses need: moesim, moebench and their test binaries, the fuzzers;
# no benchmarks. Exit status non-zero on the first failure: a build error, a test that fails (a
# sanitizer report fails its test: UB aborts, ASan and LeakSanitizer exit non-zero), or a harness
# that finds a crash, hang or leak.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan
seconds=${MOESIM_FUZZ_SECONDS:-10}

CC=clang CXX=clang++ cmake -S . -B "$build" -DMOESIM_SANITIZE=ON -DMOESIM_FUZZ=ON \
  -DMOESIM_CUDA=OFF
cmake --build "$build" -j2 --target moesim moesim_tests moebench moebench_tests \
  moebench_mpi_tests moesim_fuzzers

# ASan's defaults: the first error ends the process, LeakSanitizer on at exit (off only in the
# processes mpirun starts, label no-leak-check: CMakeLists.txt says why). UBSan aborts on its own
# (-fno-sanitize-recover); the stack trace says where. ctest lists the one test a sanitizer build
# does not run as Disabled (label slow-under-sanitizers; tests/CMakeLists.txt says why).
export UBSAN_OPTIONS=print_stacktrace=1
# -j2: both cores (CI has 2); the mpirun tests still run one at a time (RESOURCE_LOCK mpirun).
ctest --test-dir "$build" --output-on-failure -j2

scripts/fuzz.sh -b "$build" -t "$seconds"
