#!/usr/bin/env bash
# `moesim plan` under mpirun prints the same table as one process: the candidates are spread over
# the ranks and gathered on rank 0. Usage: plan_mpirun_test.sh MOESIM MPIEXEC RANKS MODEL_FILE
set -euo pipefail
moesim=$1 mpiexec=$2 ranks=$3 model=$4
exec "$(dirname "$0")/mpirun_same_table_test.sh" "$moesim" "$mpiexec" "$ranks" \
  plan --model "$model" --cluster dgx-h100 --gpus 16 --global-batch 32 --seq-len 512 --csv \
  --top 1000 --threads 1
