#!/usr/bin/env bash
# `moesim plan` under mpirun prints the same table as one process: the candidates are spread over
# the ranks and gathered on rank 0. Usage: plan_mpirun_test.sh MOESIM MPIEXEC RANKS MODEL_FILE
set -euo pipefail
moesim=$1 mpiexec=$2 ranks=$3 model=$4
args=(plan --model "$model" --cluster dgx-h100 --gpus 16 --global-batch 32 --seq-len 512 --csv
      --top 1000 --threads 1)
single=$("$moesim" "${args[@]}")
spread=$("$mpiexec" -n "$ranks" "$moesim" "${args[@]}")
rows=$(printf '%s\n' "$single" | wc -l)
if [ "$single" != "$spread" ]; then
  echo "plan under mpirun -n $ranks differs from one process:"
  diff <(printf '%s\n' "$single") <(printf '%s\n' "$spread") | head -20
  exit 1
fi
echo "same table from 1 process and $ranks MPI ranks: $rows lines"
