#!/usr/bin/env bash
# The H200 calibration loop's second half, here on the development machine: fit a hardware
# profile from what backend/gpu-check.sh measured on one H200 (the grouped-GEMM sweep, the seed
# example and the fit scenarios of scenarios/calibration/h200), and validate it on the held-out
# scenarios. Writes results/calibration/h200/.
#
#   scripts/calibrate-h200.sh [MEASURED]   # MEASURED: gpu-check.sh's output folder
#                                          # (default results/gpu/h200-2026-11-28)
#   BUILD=build-lead scripts/calibrate-h200.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
MOESIM=${MOESIM:-$BUILD/sim/moesim}
MEASURED=${1:-results/gpu/h200-2026-11-28}
OUT=results/calibration/h200
SCEN=scenarios/calibration/h200
mkdir -p "$OUT"

fit=("$MEASURED/h200_gemm.pb" "$MEASURED/moebench_run_gpu1.pb")
scenario_args=(--scenario "$MEASURED/seed_example_1gpu.pbtxt")
for s in "$SCEN"/fit/*.pbtxt; do
  fit+=("$MEASURED/fit_$(basename "$s" .pbtxt).pb")
  scenario_args+=(--scenario "$s")
done
"$MOESIM" calibrate "${fit[@]}" "${scenario_args[@]}" --name h200-sxm-one-gpu \
  --out "$OUT/h200-profile.pbtxt" | tee "$OUT/calibrate.txt"

heldout=("$SCEN"/heldout/*.pbtxt)
measured_args=()
for s in "${heldout[@]}"; do
  measured_args+=(--measured "$MEASURED/heldout_$(basename "$s" .pbtxt).pb")
done
validate=("$MOESIM" validate "${heldout[@]}" "${measured_args[@]}" --hardware "$OUT/h200-profile.pbtxt")
"${validate[@]}" > "$OUT/validation.txt"
"${validate[@]}" --json > "$OUT/validation.json"
{
  echo "# H200 calibration: held-out validation"
  echo
  echo "Measured by \`backend/gpu-check.sh all\` on one NVIDIA H200 SXM (driver 580.159.04, CUDA 13.0,"
  echo "cuBLAS 13.1, NCCL 2.28.9; $MEASURED/gpu_env.txt), 2026-11-28; fitted and validated here."
  echo "Every run is one GPU, EP 1, with the expert GEMMs issued per expert (\`--gemm-api loop\`):"
  echo "dispatch and combine are the one-rank NCCL exchange and the local regroup (link class"
  echo "\"local\": latency plus local bytes over a local bandwidth), so this profile says nothing"
  echo "about links between GPUs."
  echo
  echo "Fit: the grouped-GEMM sweep (16 to 8,192 tokens per expert, 1 and 8 experts), the seed"
  echo "example as one GPU, and $(ls "$SCEN"/fit | sed 's/.pbtxt//' | paste -sd, | sed 's/,/, /g')."
  echo "Held out: $(ls "$SCEN"/heldout | sed 's/.pbtxt//' | paste -sd, | sed 's/,/, /g') (full-width"
  echo "Mixtral-8x7B layers)."
  echo
  if grep -q large_gemms "$OUT/h200-profile.pbtxt"; then
    echo "The expert GEMMs take two size bands (the profile's gpu.large_gemms, split where the fit"
    echo "halves its residual): small GEMMs are bound by reading the experts' weights, large ones"
    echo "run at the rate the H200 holds through them. The small band's gemm_peak_tflops is the"
    echo "asymptote of a curve fitted below the split, not a rate the GPU reaches."
  else
    echo "The expert GEMMs take one rate curve: splitting them by size did not halve its residual."
  fi
  echo
  echo '```sh'
  echo "scripts/calibrate-h200.sh $MEASURED"
  echo "${validate[*]}"
  echo '```'
  echo
  echo '```'
  cat "$OUT/validation.txt"
  echo '```'
} > "$OUT/validation.md"
cat "$OUT/validation.txt"
