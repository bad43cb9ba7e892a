#!/usr/bin/env bash
# The one script run on a GPU machine (see ../shared/DESIGN.md and GPU.md). In one run it prints
# the machine (nvidia-smi, driver, CUDA, cuBLAS, NCCL); runs gpu_kernel_check (the copy and bf16
# GEMM ceilings, every CUDA kernel against the CPU reference, permute and grouped GEMM against the
# ceilings, the grouped-GEMM sweep, the one-GPU Mixtral-8x7B layer); the PyTorch peer; and, with
# the moebench binary bundled by `prepare`, moebench's NCCL path on one GPU (--check on the seed
# example and a full-width Mixtral layer), the H200 calibration scenarios and `moebench gemm` (bf16,
# and fp8 with block scales), and the Mixtral layer and the fit scenarios with FP8 experts.
#
#   backend/gpu-check.sh prepare      # here, on the development machine, after building
#                                     # build-nccl (CUDA + NCCL): fills build-gpu-deps/ (carry it)
#   backend/gpu-check.sh [check|mixtral|all] [--quick]
#        check    ceilings, kernels against the CPU reference, targets, grouped-GEMM sweep
#        mixtral  one GPU, Mixtral-8x7B MoE layer: 4,096 and 16,384 tokens, uniform and Zipf
#        all      both, then the moebench runs and the test suite's GPU cases (the default)
#        tests    only the test suite's GPU cases (moebench_tests "[gpu]")
#
# `prepare` writes, all ignored by git:
#   build-gpu-deps/eigen3             Eigen's headers (the GPU machine has none)
#   build-gpu-deps/gpu_kernel_check   built here with nvcc (no CMake project, no protobuf, no MPI:
#                                     the kernels layer needs only CUDA, cuBLAS and Eigen); the GPU
#                                     machine builds its own when this one cannot load there
#   build-gpu-deps/moebench/          moebench (MOEBENCH, default build-nccl/backend/moebench) and its
#                                     test binary (MOEBENCH_TESTS, for the [gpu] cases), with
#                                     the shared libraries the GPU machine lacks (OpenMPI and its
#                                     plugins, protobuf, Boost) in lib/; libstdc++ and libgcc_s in
#                                     fallback-lib/, searched after the machine's own (newer) ones
#
# Back on the development machine, the H200 profile and its held-out check (README, "Calibration"):
#   scripts/calibrate-h200.sh OUT     # OUT: the unpacked results folder
#
# Environment: OUT (results folder; default ./gpu-check-out), CUDA_HOME, EIGEN_DIR, NVCC, MOEBENCH.
# Exit status: gpu_kernel_check's (0 pass, 1 a kernel disagrees or a call failed, 77 no GPU),
# 2 when the build cannot start or fails; 3 when the kernels pass but a moebench run fails.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
DEPS=$ROOT/build-gpu-deps
MODE=all
QUICK=()
for arg in "$@"; do
  case "$arg" in
    prepare|check|mixtral|all|tests) MODE=$arg ;;
    --quick) QUICK=(--quick) ;;
    *) echo "usage: $0 [prepare|check|mixtral|all|tests] [--quick]" >&2; exit 2 ;;
  esac
done

if [[ $MODE == prepare ]]; then
  OUT=${OUT:-$(mktemp -d)}
else
  OUT=${OUT:-$ROOT/gpu-check-out}
fi
mkdir -p "$OUT"
ENV_TXT=$OUT/gpu_env.txt
note() { echo "$*" | tee -a "$ENV_TXT"; }
: >"$ENV_TXT"

# ---- the machine --------------------------------------------------------------------------------
note "== $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname) mode=$MODE ${QUICK[*]}"
if [[ $MODE != prepare ]]; then
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi 2>&1 | tee -a "$ENV_TXT"
    note "driver: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
      --format=csv,noheader 2>&1)"
  else
    note "nvidia-smi: not found"
  fi
  note "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); $(ldd --version | head -1)"
fi

# ---- the toolkit: nvcc, cuBLAS, the CUDA runtime, NCCL ------------------------------------------
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC=${NVCC:-}
for c in "$NVCC" "$CUDA_HOME/bin/nvcc" "$(command -v nvcc 2>/dev/null)"; do
  if [[ -n $c && -x $c ]]; then NVCC=$c; break; fi
done
[[ -x $NVCC ]] || { note "gpu-check: no nvcc (set NVCC or CUDA_HOME)"; exit 2; }
CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
note "nvcc: $NVCC: $("$NVCC" --version | tail -2 | tr '\n' ' ')"
note "host compiler: $(${CXX:-c++} --version 2>&1 | head -1)"

# Python's nvidia-* packages (cuBLAS, NCCL) where the toolkit lacks them.
PY_NVIDIA=$(python3 -c 'import nvidia; print(" ".join(nvidia.__path__))' 2>/dev/null || true)
find_first() {  # find_first NAME DIR...: the first file NAME under the DIRs, not a link stub
  local name=$1; shift
  for d in "$@"; do
    [[ -d $d ]] || continue
    local hit
    hit=$(find -L "$d" -name "$name" -not -path '*/stubs/*' -print -quit 2>/dev/null)
    if [[ -n $hit ]]; then echo "$hit"; return 0; fi
  done
  return 1
}
CUBLAS_H=$(find_first cublas_v2.h "$CUDA_HOME/include" "$CUDA_HOME/targets" $PY_NVIDIA)
CUBLAS_SO=$(find_first 'libcublas.so' "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets" \
  || find_first 'libcublas.so.*[0-9]' "$CUDA_HOME/lib64" "$CUDA_HOME/targets" $PY_NVIDIA)
[[ -n $CUBLAS_H && -n $CUBLAS_SO ]] || {
  note "gpu-check: cuBLAS not found (header: '${CUBLAS_H}', library: '${CUBLAS_SO}')"; exit 2; }
CUBLAS_LIB=$(dirname "$CUBLAS_SO")
CUBLASLT_SO=$(find_first "$(basename "$CUBLAS_SO" | sed 's/cublas/cublasLt/')" "$CUBLAS_LIB")
note "cuBLAS: $CUBLAS_SO ($(basename "$(readlink -f "$CUBLAS_SO")")), headers $(dirname "$CUBLAS_H")"
# nvcc links the CUDA runtime statically; where the toolkit lacks libcudart_static.a, link the
# shared one (the toolkit's or Python's nvidia-cuda-runtime).
CUDART=()
CUDART_SO=""
if ! find_first libcudart_static.a "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets" \
    >/dev/null; then
  CUDART_SO=$(find_first 'libcudart.so*' "$CUDA_HOME/lib64" "$CUDA_HOME/targets" $PY_NVIDIA)
  [[ -n $CUDART_SO ]] || { note "gpu-check: no CUDA runtime library found"; exit 2; }
  CUDART=(-cudart none "$CUDART_SO" -Xlinker -rpath="$(dirname "$CUDART_SO")")
  note "CUDA runtime: $CUDART_SO (shared)"
fi
NCCL_SO=$(find_first 'libnccl.so*' "$CUDA_HOME/lib64" "$CUDA_HOME/lib" $PY_NVIDIA)
note "NCCL: ${NCCL_SO:-not found} ($(basename "$(readlink -f "${NCCL_SO:-/dev/null}")"));" \
  "torch says: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda,
  "nccl", torch.cuda.nccl.version())' 2>/dev/null || echo 'no torch')"

EIGEN=""
EIGEN_DIRS=("${EIGEN_DIR:-}" "$DEPS/eigen3" /usr/include/eigen3)
[[ $MODE == prepare ]] && EIGEN_DIRS=("${EIGEN_DIR:-}" /usr/include/eigen3)  # prepare fills DEPS
for d in "${EIGEN_DIRS[@]}"; do
  if [[ -n $d && -f $d/Eigen/Core ]]; then EIGEN=$d; break; fi
done
[[ -n $EIGEN ]] || {
  note "gpu-check: no Eigen headers: run '$0 prepare' on the development machine and carry" \
    "build-gpu-deps, or set EIGEN_DIR"; exit 2; }
note "Eigen: $EIGEN"

# build_kernel_check DIR: DIR/gpu_kernel_check from backend/kernels with nvcc alone.
build_kernel_check() {
  local dir=$1
  rm -rf "$dir/obj" && mkdir -p "$dir/obj"
  local flags=(-std=c++20 -O2 -DNDEBUG -DMOESIM_HAVE_CUDA=1 -I"$ROOT" -isystem "$EIGEN"
               -I"$(dirname "$CUBLAS_H")" -gencode=arch=compute_90,code=sm_90
               -gencode=arch=compute_90,code=compute_90 -Xcompiler=-Wall,-Wextra)
  local sources=() f
  for f in backend/kernels/*.cc backend/kernels/cuda/*.cc backend/kernels/cuda/*.cu; do
    [[ $f == *gpu_kernels_stub.cc ]] || sources+=("$f")
  done
  note "building gpu_kernel_check from ${#sources[@]} files with ${NVCC##*/} (${flags[*]})"
  local start=$SECONDS pids=() p pid obj failed=0
  for f in "${sources[@]}"; do
    obj=$dir/obj/$(echo "$f" | tr / _).o
    "$NVCC" "${flags[@]}" -c "$f" -o "$obj" >"$obj.log" 2>&1 &
    pids+=("$!:$f:$obj")
  done
  for p in "${pids[@]}"; do
    IFS=: read -r pid f obj <<<"$p"
    if ! wait "$pid"; then failed=1; note "compile FAILED: $f"; fi
    cat "$obj.log"
  done
  [[ $failed == 0 ]] || return 2
  local libs=(-L"$CUBLAS_LIB" "$CUBLAS_SO" ${CUBLASLT_SO:+"$CUBLASLT_SO"}
              -Xlinker -rpath="$CUBLAS_LIB")
  "$NVCC" -o "$dir/gpu_kernel_check" "$dir"/obj/*.o "${libs[@]}" "${CUDART[@]}" 2>&1 |
    tee -a "$ENV_TXT"
  [[ ${PIPESTATUS[0]} == 0 ]] || { note "link FAILED"; return 2; }
  rm -rf "$dir/obj"
  note "built $dir/gpu_kernel_check in $((SECONDS - start)) s"
}

# ---- prepare (development machine) ----------------------------------------------------------------
if [[ $MODE == prepare ]]; then
  rm -rf "$DEPS/eigen3" && mkdir -p "$DEPS/eigen3"
  cp -r "$EIGEN/Eigen" "$DEPS/eigen3/" || exit 2
  EIGEN=$DEPS/eigen3
  build_kernel_check "$DEPS/kernel-check" || exit 2
  bin=${MOEBENCH:-build-nccl/backend/moebench}
  rm -rf "$DEPS/moebench"
  if [[ -x $bin ]]; then
    mkdir -p "$DEPS/moebench/lib" "$DEPS/moebench/fallback-lib" "$DEPS/moebench/plugins"
    cp "$bin" "$DEPS/moebench/moebench" || exit 2
    # The test binary too, for its GPU cases (the same libraries as moebench).
    tests=${MOEBENCH_TESTS:-build-nccl/tests/moebench_tests}
    [[ -x $tests ]] && cp "$tests" "$DEPS/moebench/moebench_tests"
    plugins=$(dirname "$(readlink -f "$(ldd "$bin" | awk '/libmpi\.so/ {print $3}')")")/openmpi/lib/openmpi3
    [[ -d $plugins ]] && cp -L "$plugins"/*.so "$DEPS/moebench/plugins/" 2>/dev/null
    # Not the GPU's own libraries (driver, CUDA runtime, cuBLAS, NCCL: the GPU machine has them)
    # nor glibc's; the C++ runtime only as a fallback behind the machine's own.
    skip='libcuda\.|libcudart|libcublas|libnccl|libnvidia|ld-linux|/libc\.so|/libm\.so|libpthread|libdl\.|librt\.'
    { ldd "$bin"; ldd "$DEPS"/moebench/plugins/*.so 2>/dev/null; } |
      awk '/=> \// {print $3}' | sort -u | grep -Ev "$skip" |
      while read -r lib; do
        case $lib in
          */libstdc++.so*|*/libgcc_s.so*) cp -L "$lib" "$DEPS/moebench/fallback-lib/" ;;
          *) cp -L "$lib" "$DEPS/moebench/lib/" ;;
        esac
      done
    # Debian's OpenMPI reads its help texts from here; without them errors are terse, not fatal.
    [[ -d /usr/share/openmpi ]] && cp -r /usr/share/openmpi "$DEPS/moebench/share-openmpi"
    note "prepare: bundled $bin with $(ls "$DEPS/moebench/lib" | wc -l) libraries"
  else
    note "prepare: no moebench at $bin (set MOEBENCH): the moebench steps will be skipped"
  fi
  note "prepare: build-gpu-deps is $(du -sh "$DEPS" | cut -f1); carry [\"build-gpu-deps\"] and run:" \
    "bash backend/gpu-check.sh all"
  exit 0
fi

# ---- gpu_kernel_check: the one prepared here when it loads, else built now ----------------------
status=0
if [[ $MODE != tests ]]; then
  export LD_LIBRARY_PATH=$CUBLAS_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  CHECK=$DEPS/kernel-check/gpu_kernel_check
  if [[ -x $CHECK ]] && ! ldd "$CHECK" 2>&1 | grep -q 'not found'; then
    note "gpu_kernel_check: the one built by prepare ($CHECK)"
  else
    if [[ -x $CHECK ]]; then
      note "gpu_kernel_check from prepare does not load here:"
      ldd "$CHECK" | tee -a "$ENV_TXT"
    fi
    build_kernel_check "$ROOT/build-gpu" || exit 2
    CHECK=$ROOT/build-gpu/gpu_kernel_check
  fi

  JSON=$OUT/gpu_kernel_check_$MODE.json
  "$CHECK" --mode "$MODE" --json "$JSON" "${QUICK[@]}" 2>&1 | tee "$OUT/gpu_kernel_check_$MODE.log"
  status=${PIPESTATUS[0]}
  case $status in
    0) note "gpu-check: PASS; results in $JSON" ;;
    77) note "gpu-check: SKIPPED: no CUDA device visible (see the message above)" ;;
    *) note "gpu-check: FAILED with status $status; see $OUT/gpu_kernel_check_$MODE.log" ;;
  esac
  [[ $status == 77 ]] && exit 77

  # ---- a peer: the same expert FFN in PyTorch (a loop over experts), when torch sees the GPU ----
  if [[ $MODE != check && ${#QUICK[@]} == 0 ]]; then
    timeout 120 python3 "$ROOT/backend/kernels/cuda/torch_peer.py" >"$OUT/torch_peer.txt" 2>&1 ||
      echo "torch peer: did not run (see $OUT/torch_peer.txt)" >>"$OUT/torch_peer.txt"
    cat "$OUT/torch_peer.txt"
    # One MoE transformer layer of T03's and T04's models, forward and backward, as eager PyTorch
    # runs it: each op's span, and wall against kernel time (torch_moe_layer_peer.json).
    OUT=$OUT timeout 180 python3 "$ROOT/backend/kernels/cuda/torch_moe_layer_peer.py" \
      >"$OUT/torch_moe_layer_peer.txt" 2>&1 ||
      echo "torch MoE layer peer: did not run (see above)" >>"$OUT/torch_moe_layer_peer.txt"
    cat "$OUT/torch_moe_layer_peer.txt"
  fi
fi

# ---- moebench on one GPU: the NCCL path (a one-rank communicator), calibration runs, GEMM sweep -
BUNDLE=$DEPS/moebench
if [[ ($MODE != all && $MODE != tests) || ! -x $BUNDLE/moebench ]]; then
  [[ $MODE == all || $MODE == tests ]] &&
    note "moebench: skipped (no build-gpu-deps/moebench; run '$0 prepare' after building" \
      "build-nccl, and carry build-gpu-deps)"
  exit "$status"
fi
NVLIBS=""
for d in "$CUBLAS_LIB" $(dirname "${NCCL_SO:-/nonexistent/x}") \
         $(dirname "${CUDART_SO:-/nonexistent/x}") $PY_NVIDIA; do
  [[ -d $d ]] && NVLIBS=$NVLIBS:$d
  [[ -d $d/lib ]] && NVLIBS=$NVLIBS:$d/lib
done
for d in $PY_NVIDIA; do for l in "$d"/*/lib; do [[ -d $l ]] && NVLIBS=$NVLIBS:$l; done; done
SYSLIBS=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 / {print $NF; exit}')
note "moebench: libstdc++ $( [[ -n $SYSLIBS ]] && echo "from the machine ($SYSLIBS)" ||
  echo "from the bundle")"
# bundled BINARY NAME ARGS...: one bundled program, its output in $OUT/NAME.log; false if it failed.
bundled() {
  local binary=$1 name=$2; shift 2
  note "$binary $*"
  LD_LIBRARY_PATH=$BUNDLE/lib$NVLIBS:${LD_LIBRARY_PATH:-}:$BUNDLE/fallback-lib \
    OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_mca_base_component_path=$BUNDLE/plugins \
    OPAL_PKGDATADIR=$BUNDLE/share-openmpi OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_DEBUG=${NCCL_DEBUG:-WARN} \
    timeout 240 "$BUNDLE/$binary" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  note "$binary $name: $([[ $rc == 0 ]] && echo PASS || echo "FAILED with status $rc")"
  [[ $rc == 0 ]] || status=3
  return "$rc"
}
moebench() { bundled moebench "$@"; }
if [[ $MODE == all ]]; then
  RUN=(run --device gpu --gpus 1 --timeout-s 120)
  # The calibration measurements issue every expert GEMM one way (the per-expert loop, which `auto`
  # picks at these loads), so that one GEMM model fits them all.
  LOOP=(--gemm-api loop)

  # The seed example (4 GPUs) as one GPU: cluster.gpus 1, EP 1, only rank 0's routing (tokens
  # choosing experts 2, 7, 0, 3, all local: the NCCL exchange runs with one rank).
  SEED=$OUT/seed_example_1gpu.pbtxt
  sed -e 's/^  gpus: 4$/  gpus: 1/' -e 's/^  ep: 4$/  ep: 1/' -e '/rank { rank: [1-9]/d' \
    "$ROOT/scenarios/seed_example.pbtxt" >"$SEED"
  moebench moebench_run_gpu1 "${RUN[@]}" "$SEED" "${LOOP[@]}" --check --warmup 3 --iters 20 \
    --out "$OUT/moebench_run_gpu1.pb"
  # A full-width Mixtral layer, every kernel of the staged path checked against the CPU reference
  # (64 rows per expert: `auto` issues the grouped call here).
  H200=$ROOT/scenarios/calibration/h200
  moebench check_t256 "${RUN[@]}" "$H200/check-zipf1.2-t256.pbtxt" --check --warmup 2 --iters 10 \
    --out "$OUT/check_t256.pb"
  # The H200 calibration scenarios (fit and held out), timed.
  for set in fit heldout; do
    for s in "$H200/$set"/*.pbtxt; do
      moebench "${set}_$(basename "$s" .pbtxt)" "${RUN[@]}" "$s" "${LOOP[@]}" --warmup 5 \
        --iters 30 --out "$OUT/${set}_$(basename "$s" .pbtxt).pb"
    done
  done
  # Where `auto` should switch: both APIs at 8 to 512 rows per expert, 1, 8 and 32 experts, on
  # Mixtral-8x7B's and DeepSeek-V3's expert shapes.
  for api in grouped loop; do
    moebench "gemm_small_$api" gemm --device gpu --gemm-api "$api" \
      --tokens-per-expert 8 16 32 64 128 256 512 --experts 1 8 32 --hidden 4096 7168 \
      --ffn 14336 2048 --warmup 3 --iters 20 --out "$OUT/gemm_small_$api.pb"
  done
  # NCCL's all-to-all on a one-rank communicator: the call overhead and the local copy, 8 B-256 MiB.
  moebench a2a_gpu1 a2a --device gpu -b 8 -e 256M -f 4 -w 5 -n 20
  # Mixtral-8x7B's grouped expert GEMM from 16 to 8,192 tokens per expert, 1 and 8 experts.
  moebench h200_gemm gemm --device gpu "${LOOP[@]}" --tokens-per-expert 16 64 256 1024 4096 8192 \
    --experts 1 8 --hidden 4096 --ffn 14336 --warmup 3 --iters 20 --out "$OUT/h200_gemm.pb"
  # The same GEMMs sustained, as a training step runs them back to back for seconds: 4,096 and
  # 8,192 tokens of one expert, 2,000 and 500 iterations (about 4 s and 8 s), the SM clock, power
  # and temperature sampled every 200 ms beside them. The compute model's dense rate (785.6 TFLOP/s,
  # cuBLAS 8192^3 for a moment) is a burst figure; h200_gemm's longer cases above already run
  # 9-15 % below it. This says whether the clock falls with time (power) or the shape does it.
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv -lms 200 \
      >"$OUT/gemm_sustained_clocks.csv" 2>&1 &
    SMI=$!
  fi
  moebench gemm_sustained gemm --device gpu "${LOOP[@]}" --tokens-per-expert 4096 --experts 1 \
    --hidden 4096 --ffn 14336 --warmup 3 --iters 2000 --out "$OUT/gemm_sustained_4096.pb"
  moebench gemm_sustained_8192 gemm --device gpu "${LOOP[@]}" --tokens-per-expert 8192 \
    --experts 1 --hidden 4096 --ffn 14336 --warmup 3 --iters 500 \
    --out "$OUT/gemm_sustained_8192.pb"
  [[ -n ${SMI:-} ]] && kill "$SMI" 2>/dev/null
  # FP8 expert GEMMs with DeepSeek-V3's block scales (cuBLASLt, a call per expert; issue "Predictions
  # a practitioner can trust", item 7): DeepSeek-V3's expert (7168 x 2048, the shapes of DeepGEMM's
  # grouped table: N 4096, K 7168 up; N 7168, K 2048 down) and Mixtral-8x7B's, 128 to 8,192 rows.
  moebench gemm_fp8 gemm --device gpu --dtype fp8 --tokens-per-expert 128 512 2048 4096 8192 \
    --experts 4 8 --hidden 7168 4096 --ffn 2048 14336 --warmup 3 --iters 20 --out "$OUT/gemm_fp8.pb"
  # The same Mixtral layer with FP8 experts (`moebench run --dtype fp8`): checked against the exact
  # reference within the FP8 bound, then timed beside the bf16 run of the same scenario above.
  moebench check_t256_fp8 "${RUN[@]}" "$H200/check-zipf1.2-t256.pbtxt" --dtype fp8 --check \
    --warmup 2 --iters 10 --out "$OUT/check_t256_fp8.pb"
  for s in "$H200"/fit/*.pbtxt; do
    moebench "fp8_$(basename "$s" .pbtxt)" "${RUN[@]}" "$s" --dtype fp8 --warmup 5 --iters 30 \
      --out "$OUT/fp8_$(basename "$s" .pbtxt).pb"
  done
fi
# The test suite's GPU cases (ctest -L gpu), which skip everywhere else.
if [[ -x $BUNDLE/moebench_tests ]]; then
  bundled moebench_tests moebench_tests_gpu "[gpu]" --success --reporter compact
fi
exit "$status"
