#!/usr/bin/env bash
# The one script run on a GPU machine (see ../shared/DESIGN.md and GPU.md): prints the machine
# (nvidia-smi, driver, CUDA, cuBLAS, NCCL), builds gpu_kernel_check with nvcc alone (no CMake
# project, no protobuf, no MPI: the kernels layer needs only the CUDA toolkit, cuBLAS and the
# Eigen headers), runs it, and writes its JSON, log and the environment under $OUT.
#
#   backend/gpu-check.sh prepare      # here, on a development machine: copy the Eigen headers into
#                                     # build-gpu-deps/eigen3 (ignored by git; carry it)
#   backend/gpu-check.sh [check|mixtral|all] [--quick]
#        check    ceilings (D2D copy, dense bf16 GEMM), every kernel against the CPU reference,
#                 permute and grouped GEMM against the ceilings, grouped-GEMM sweep
#        mixtral  one GPU, Mixtral-8x7B MoE layer: 4,096 and 16,384 tokens, uniform and Zipf
#        all      both (the default)
#
#
# Then, when `prepare` found a built moebench (MOEBENCH, default build-nccl/backend/moebench, a
# CUDA + NCCL build) and bundled it with the shared libraries the GPU machine lacks (OpenMPI and
# its plugins, protobuf, Boost, libstdc++; see ../shared/GPU.md) into build-gpu-deps/moebench,
# the script also runs the NCCL path of `moebench run --device gpu` on one GPU (a one-rank NCCL
# communicator) with --check: the seed example's routing for rank 0, as a one-GPU scenario.
# That step has never run on a GPU yet; its result is written to $OUT/moebench_run_gpu1.*.
#
# Environment: OUT (results folder; default ./gpu-check-out), CUDA_HOME, EIGEN_DIR, NVCC, MOEBENCH.
# Exit status: gpu_kernel_check's (0 pass, 1 a kernel disagrees or a call failed, 77 no GPU),
# 2 when the build cannot start or fails; 3 when the kernels pass but the moebench run fails.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
MODE=all
QUICK=()
for arg in "$@"; do
  case "$arg" in
    prepare|check|mixtral|all) MODE=$arg ;;
    --quick) QUICK=(--quick) ;;
    *) echo "usage: $0 [prepare|check|mixtral|all] [--quick]" >&2; exit 2 ;;
  esac
done

if [[ $MODE == prepare ]]; then
  src=${EIGEN_DIR:-/usr/include/eigen3}
  [[ -f $src/Eigen/Core ]] || { echo "prepare: no Eigen headers at $src (set EIGEN_DIR)" >&2; exit 2; }
  rm -rf build-gpu-deps/eigen3 && mkdir -p build-gpu-deps/eigen3
  cp -r "$src/Eigen" build-gpu-deps/eigen3/ || exit 2
  # moebench and the shared libraries a Debian build needs, except the GPU's own (driver, CUDA
  # runtime, cuBLAS, NCCL: the GPU machine has them) and glibc's.
  bin=${MOEBENCH:-build-nccl/backend/moebench}
  rm -rf build-gpu-deps/moebench
  if [[ -x $bin ]]; then
    mkdir -p build-gpu-deps/moebench/lib build-gpu-deps/moebench/plugins
    cp "$bin" build-gpu-deps/moebench/moebench || exit 2
    plugins=$(dirname "$(readlink -f "$(ldd "$bin" | awk '/libmpi\.so/ {print $3}')")")/openmpi/lib/openmpi3
    [[ -d $plugins ]] && cp -L "$plugins"/*.so build-gpu-deps/moebench/plugins/ 2>/dev/null
    skip='libcuda\.|libcudart|libcublas|libnccl|libnvidia|ld-linux|/libc\.so|/libm\.so|libpthread|libdl\.|librt\.'
    { ldd "$bin"; ldd build-gpu-deps/moebench/plugins/*.so 2>/dev/null; } |
      awk '/=> \// {print $3}' | sort -u | grep -Ev "$skip" |
      while read -r lib; do cp -L "$lib" build-gpu-deps/moebench/lib/; done
    # Debian's OpenMPI reads its help texts from here; without them errors are terse, not fatal.
    [[ -d /usr/share/openmpi ]] && cp -r /usr/share/openmpi build-gpu-deps/moebench/share-openmpi
    echo "prepare: bundled $bin with $(ls build-gpu-deps/moebench/lib | wc -l) libraries"
  else
    echo "prepare: no moebench at $bin (set MOEBENCH): the moebench run step will be skipped"
  fi
  echo "prepare: copied $src/Eigen to build-gpu-deps/eigen3 ($(du -sh build-gpu-deps | cut -f1));"
  echo "         carry [\"build-gpu-deps\"] and run: bash backend/gpu-check.sh all"
  exit 0
fi

OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
ENV_TXT=$OUT/gpu_env.txt
note() { echo "$*" | tee -a "$ENV_TXT"; }
: >"$ENV_TXT"

# ---- the machine --------------------------------------------------------------------------------
note "== $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname) mode=$MODE ${QUICK[*]}"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi 2>&1 | tee -a "$ENV_TXT"
  note "driver: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv,noheader 2>&1)"
else
  note "nvidia-smi: not found"
fi

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
find_first() {  # find_first NAME DIR...: the first file NAME under the DIRs
  local name=$1; shift
  for d in "$@"; do
    [[ -d $d ]] || continue
    local hit
    hit=$(find -L "$d" -name "$name" -print -quit 2>/dev/null)
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
for d in "${EIGEN_DIR:-}" "$ROOT/build-gpu-deps/eigen3" /usr/include/eigen3; do
  if [[ -n $d && -f $d/Eigen/Core ]]; then EIGEN=$d; break; fi
done
[[ -n $EIGEN ]] || {
  note "gpu-check: no Eigen headers: run '$0 prepare' on the development machine and carry" \
    "build-gpu-deps, or set EIGEN_DIR"; exit 2; }
note "Eigen: $EIGEN"

# ---- build ----------------------------------------------------------------------------------------
BUILD=$ROOT/build-gpu
rm -rf "$BUILD/obj" && mkdir -p "$BUILD/obj"
FLAGS=(-std=c++20 -O2 -DNDEBUG -DMOESIM_HAVE_CUDA=1 -I"$ROOT" -isystem "$EIGEN"
       -I"$(dirname "$CUBLAS_H")" -gencode=arch=compute_90,code=sm_90
       -gencode=arch=compute_90,code=compute_90 -Xcompiler=-Wall,-Wextra)
SOURCES=()
for f in backend/kernels/*.cc backend/kernels/cuda/*.cc backend/kernels/cuda/*.cu; do
  [[ $f == *gpu_kernels_stub.cc ]] || SOURCES+=("$f")
done
note "building gpu_kernel_check from ${#SOURCES[@]} files with ${NVCC##*/} (${FLAGS[*]})"
start=$SECONDS
pids=()
for f in "${SOURCES[@]}"; do
  obj=$BUILD/obj/$(echo "$f" | tr / _).o
  "$NVCC" "${FLAGS[@]}" -c "$f" -o "$obj" >"$obj.log" 2>&1 &
  pids+=("$!:$f:$obj")
done
failed=0
for p in "${pids[@]}"; do
  IFS=: read -r pid f obj <<<"$p"
  if ! wait "$pid"; then failed=1; note "compile FAILED: $f"; fi
  cat "$obj.log"
done
[[ $failed == 0 ]] || exit 2
LIBS=(-L"$CUBLAS_LIB" "$CUBLAS_SO" ${CUBLASLT_SO:+"$CUBLASLT_SO"} -Xlinker -rpath="$CUBLAS_LIB")
"$NVCC" -o "$BUILD/gpu_kernel_check" "$BUILD"/obj/*.o "${LIBS[@]}" "${CUDART[@]}" 2>&1 | tee -a "$ENV_TXT"
[[ ${PIPESTATUS[0]} == 0 ]] || { note "link FAILED"; exit 2; }
note "built $BUILD/gpu_kernel_check in $((SECONDS - start)) s"
export LD_LIBRARY_PATH=$CUBLAS_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# ---- run ------------------------------------------------------------------------------------------
JSON=$OUT/gpu_kernel_check_$MODE.json
"$BUILD/gpu_kernel_check" --mode "$MODE" --json "$JSON" "${QUICK[@]}" 2>&1 |
  tee "$OUT/gpu_kernel_check_$MODE.log"
status=${PIPESTATUS[0]}
case $status in
  0) note "gpu-check: PASS; results in $JSON" ;;
  77) note "gpu-check: SKIPPED: no CUDA device visible (see the message above)" ;;
  *) note "gpu-check: FAILED with status $status; see $OUT/gpu_kernel_check_$MODE.log" ;;
esac

# ---- a peer: the same expert FFN in PyTorch (a loop over experts), when torch sees the GPU --------
if [[ $status == 0 && $MODE != check && ${#QUICK[@]} == 0 ]]; then
  timeout 120 python3 "$ROOT/backend/kernels/cuda/torch_peer.py" >"$OUT/torch_peer.txt" 2>&1 ||
    echo "torch peer: did not run (see $OUT/torch_peer.txt)" >>"$OUT/torch_peer.txt"
  cat "$OUT/torch_peer.txt"
fi

# ---- moebench run --device gpu --gpus 1: the NCCL path on one GPU ----------------------------------
BUNDLE=$ROOT/build-gpu-deps/moebench
if [[ $status == 0 && -x $BUNDLE/moebench ]]; then
  # The seed example (4 GPUs) as one GPU: cluster.gpus 1, EP 1, only rank 0's routing (tokens
  # choosing experts 2, 7, 0, 3, all local: the NCCL exchange runs with one rank).
  SCENARIO=$OUT/seed_example_1gpu.pbtxt
  sed -e 's/^  gpus: 4$/  gpus: 1/' -e 's/^  ep: 4$/  ep: 1/' -e '/rank { rank: [1-9]/d' \
    "$ROOT/scenarios/seed_example.pbtxt" >"$SCENARIO"
  NVLIBS=""
  for d in "$CUBLAS_LIB" $(dirname "${NCCL_SO:-/nonexistent/x}") \
           $(dirname "${CUDART_SO:-/nonexistent/x}") $PY_NVIDIA; do
    [[ -d $d ]] && NVLIBS=$NVLIBS:$d
    [[ -d $d/lib ]] && NVLIBS=$NVLIBS:$d/lib
  done
  for d in $PY_NVIDIA; do for l in "$d"/*/lib; do [[ -d $l ]] && NVLIBS=$NVLIBS:$l; done; done
  note "moebench run --device gpu --gpus 1 --check on $SCENARIO"
  LD_LIBRARY_PATH=$BUNDLE/lib$NVLIBS:${LD_LIBRARY_PATH:-} \
    OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_mca_base_component_path=$BUNDLE/plugins \
    OPAL_PKGDATADIR=$BUNDLE/share-openmpi OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_DEBUG=${NCCL_DEBUG:-WARN} \
    timeout 300 "$BUNDLE/moebench" run "$SCENARIO" --device gpu --gpus 1 --check --warmup 3 \
    --iters 20 --timeout-s 120 --out "$OUT/moebench_run_gpu1.pb" 2>&1 | tee "$OUT/moebench_run_gpu1.log"
  run_status=${PIPESTATUS[0]}
  if [[ $run_status == 0 ]]; then
    note "moebench run --device gpu: PASS; see $OUT/moebench_run_gpu1.log"
  else
    note "moebench run --device gpu: FAILED with status $run_status; see $OUT/moebench_run_gpu1.log"
    status=3
  fi
  # The H200's single-GPU calibration measurements (the calibration issue): Mixtral-8x7B's
  # grouped expert GEMM from 16 to 8,192 tokens per expert, 1 and 8 experts, as a measured
  # Result. Back on the development machine:
  #   build/sim/moesim calibrate OUT/h200_gemm.pb OUT/moebench_run_gpu1.pb \
  #     --scenario OUT/seed_example_1gpu.pbtxt --name h200 --out results/calibration/h200-profile.pbtxt
  note "moebench gemm --device gpu: the grouped-GEMM calibration sweep"
  LD_LIBRARY_PATH=$BUNDLE/lib$NVLIBS:${LD_LIBRARY_PATH:-} \
    OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_mca_base_component_path=$BUNDLE/plugins \
    OPAL_PKGDATADIR=$BUNDLE/share-openmpi OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    timeout 300 "$BUNDLE/moebench" gemm --device gpu --tokens-per-expert 16 64 256 1024 4096 8192 \
    --experts 1 8 --hidden 4096 --ffn 14336 --warmup 3 --iters 20 --out "$OUT/h200_gemm.pb" 2>&1 |
    tee "$OUT/h200_gemm.log"
  note "moebench gemm --device gpu: status ${PIPESTATUS[0]}; see $OUT/h200_gemm.log"
elif [[ $status == 0 ]]; then
  note "moebench run --device gpu: skipped (no build-gpu-deps/moebench; run '$0 prepare' after" \
    "building moebench with CUDA and NCCL, and carry build-gpu-deps)"
fi
exit "$status"
