#!/usr/bin/env bash
# The CPU calibration loop, end to end: measure the fit and held-out scenarios
# (scenarios/calibration/) with moebench's CPU path on 2 MPI ranks, fit a hardware profile from the
# fit set, and validate it on the held-out set. Writes into OUT_DIR (default: a new folder under
# $TMPDIR or /tmp, named on stderr), never into the committed results/calibration/ unless given it.
#
#   scripts/calibrate-cpu.sh [OUT_DIR]               # measure, fit, validate
#   MEASURE=0 scripts/calibrate-cpu.sh [OUT_DIR]     # fit and validate FROM's measurements again
#   FROM=DIR                                          # with MEASURE=0: where they are
#                                                     # (default results/calibration, read only)
#   BUILD=build scripts/calibrate-cpu.sh             # binaries from another build folder
#   scripts/calibrate-cpu.sh results/calibration     # refresh the committed results
set -euo pipefail
here=$(pwd)
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
MOEBENCH=${MOEBENCH:-$BUILD/backend/moebench}
MOESIM=${MOESIM:-$BUILD/sim/moesim}
MEASURE=${MEASURE:-1}
WARMUP=${WARMUP:-3}
ITERS=${ITERS:-21}
OUT=${1:-}
if [[ -z "$OUT" ]]; then
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/moesim-calibration.XXXXXX")
elif [[ "$OUT" != /* ]]; then
  OUT="$here/$OUT"
fi
# Inside the repository, relative to it (the commands validation.md records stay portable).
OUT=$(realpath -m --relative-base="$PWD" "$OUT")
echo "calibrate-cpu.sh: writing into $OUT" >&2
# The measurements the fit reads: this run's, or (MEASURE=0) FROM's.
if [[ "$MEASURE" == 1 ]]; then
  MEASURED=$OUT
else
  MEASURED=${FROM:-results/calibration}
  [[ "$MEASURED" == /* || -z "${FROM:-}" ]] || MEASURED="$here/$MEASURED"
fi
SCEN=scenarios/calibration

# OpenMPI as root, 2 ranks on however many cores, shared memory without CMA (containers).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=none

mkdir -p "$OUT"
if [[ "$MEASURE" == 1 ]]; then
  mkdir -p "$OUT/fit" "$OUT/heldout"
  for set in fit heldout; do
    for s in "$SCEN/$set"/*.pbtxt; do
      echo "measuring $s" >&2
      mpirun -np 2 "$MOEBENCH" run "$s" --device cpu --warmup "$WARMUP" --iters "$ITERS" \
        --out "$OUT/$set/$(basename "$s" .pbtxt).pb" > /dev/null
    done
  done
  # The expert GEMM alone at other tokens per expert and expert counts than the runs have, so
  # that the GEMM's half-rate point can be told from the launch overhead.
  echo "measuring the grouped GEMM sweep" >&2
  mpirun -np 2 "$MOEBENCH" gemm --device cpu --tokens-per-expert 32 128 512 1024 \
    --experts 1 4 --hidden 256 --ffn 896 --warmup 2 --iters 9 --out "$OUT/fit/gemm.pb" > /dev/null
fi

scenario_args=()
for s in "$SCEN"/fit/*.pbtxt; do scenario_args+=(--scenario "$s"); done
"$MOESIM" calibrate "$MEASURED"/fit/*.pb "${scenario_args[@]}" --name cpu-2rank-eigen-fp32 \
  --out "$OUT/cpu-profile.pbtxt" | tee "$OUT/calibrate.txt"

heldout=("$SCEN"/heldout/*.pbtxt)
measured_args=()
for s in "${heldout[@]}"; do measured_args+=(--measured "$MEASURED/heldout/$(basename "$s" .pbtxt).pb"); done
validate=("$MOESIM" validate "${heldout[@]}" "${measured_args[@]}" --hardware "$OUT/cpu-profile.pbtxt")
"${validate[@]}" > "$OUT/validation.txt"
"${validate[@]}" --json > "$OUT/validation.json"
{
  echo "# CPU calibration: held-out validation"
  echo
  echo "Machine: 2-core VM (idle while measuring: no other build or benchmark running); moebench"
  echo "--device cpu, 2 MPI ranks (OpenMPI, shared memory), Eigen fp32. Date: $(date -u +%F)."
  echo "Warm-up $WARMUP, $ITERS timed iterations per run (phase time: median over iterations of the"
  echo "slowest rank; each rank's own median in rank_time_ns, which the fit uses)."
  echo
  echo "Fit: scenarios/calibration/fit (uniform routing at 128..2048 tokens per rank, two Zipf runs at"
  echo "other skews and token counts, so that link bytes and local copies can be told apart) and a"
  echo "grouped GEMM sweep; held out: scenarios/calibration/heldout (Zipf routing at skews and token"
  echo "counts not in the fit, and uniform at 1536 tokens)."
  echo
  echo "Caveat: the all-to-alls take 0.2-2 ms and are sensitive to other load on the machine. A run"
  echo "taken while another build was finishing (load average falling from 6) gave dispatch 27% and"
  echo "combine 6% median error; see each Result's time_p10_ns/time_p90_ns (protoc"
  echo "--decode=moesim.pb.Result -I proto -I /usr/include proto/result.proto < FILE)."
  echo
  echo '```sh'
  echo "scripts/calibrate-cpu.sh results/calibration"
  echo "${validate[*]}"
  echo '```'
  echo
  echo '```'
  cat "$OUT/validation.txt"
  echo '```'
} > "$OUT/validation.md"
cat "$OUT/validation.txt"
