#!/usr/bin/env bash
# Installs the Debian 12 packages moesim builds with, only those that are missing, so running it
# again costs a second. Run as root (or with sudo available). Nothing is downloaded at build time.
set -euo pipefail

packages=(
  build-essential     # g++ 12, make
  cmake               # 3.25
  protobuf-compiler   # protoc: proto/*.proto -> C++
  libprotobuf-dev     # text format, binary and JSON for every file moesim reads and writes
  libboost-graph-dev  # the cluster topology graph
  libeigen3-dev       # least-squares fits (calibration)
  libcli11-dev        # the command line
  libtinyxml2-dev     # NCCL topology XML import
  nlohmann-json3-dev  # Perfetto timelines written as JSON (header-only)
  libfmt-dev          # text tables and numbers ({fmt}, used header-only)
  catch2              # tests
  openmpi-bin         # mpirun: moebench's multi-rank CPU path and plan search over ranks
  libopenmpi-dev      # MPI headers and libraries
  # The Python module, `import moesim` (sim/python/; README "Python"), for Debian's python3, and
  # its tests (tests/python/, pytest): the build skips the module without the first two.
  pybind11-dev        # C++ <-> Python bindings (header-only)
  python3-dev         # Python.h
  python3-numpy       # moesim.read_trace's arrays
  python3-pandas      # Result.to_pandas(), moesim.plan()'s DataFrame
  python3-pytest      # tests/python/
  # The sanitizer and fuzzing build (scripts/check-sanitized.sh): clang 14, and compiler-rt, where
  # Debian 12 keeps libclang_rt.{asan,ubsan_standalone,fuzzer}-x86_64.a (only a Recommends of
  # clang-14, which --no-install-recommends below skips); llvm-symbolizer (package llvm) turns
  # sanitizer reports' addresses into function names.
  clang               # clang 14 (clang-14)
  libclang-rt-14-dev  # ASan, UBSan and libFuzzer runtimes
  llvm                # llvm-symbolizer
  # The HTML report's test (tests/html_chromium_check.py): headless Chromium renders the page to a
  # PNG and dumps its DOM; the test skips when chromium is absent.
  chromium            # headless Chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "install-deps: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
