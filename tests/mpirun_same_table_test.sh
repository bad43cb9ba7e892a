#!/usr/bin/env bash
# A moesim command under mpirun prints what one process prints: its work is spread over the ranks
# and gathered on rank 0 (moesim plan's candidates, moesim sweep's points).
# Usage: mpirun_same_table_test.sh MOESIM MPIEXEC RANKS ARGS...
set -euo pipefail
moesim=$1 mpiexec=$2 ranks=$3
shift 3
single=$("$moesim" "$@")
spread=$("$mpiexec" -n "$ranks" "$moesim" "$@")
rows=$(printf '%s\n' "$single" | wc -l)
if [ "$single" != "$spread" ]; then
  echo "moesim $1 under mpirun -n $ranks differs from one process:"
  diff <(printf '%s\n' "$single") <(printf '%s\n' "$spread") | head -20
  exit 1
fi
echo "same table from 1 process and $ranks MPI ranks: $rows lines"
