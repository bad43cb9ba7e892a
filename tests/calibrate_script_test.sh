#!/usr/bin/env bash
# scripts/calibrate-cpu.sh writes where it is told, never into the committed results/calibration/
# unless given it (issue #20): refitting the committed measurements (MEASURE=0) into a temporary
# folder gives the committed profile again, and leaves the committed folder as it was.
#   tests/calibrate_script_test.sh SOURCE_DIR MOESIM
set -euo pipefail
src=$1
moesim=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
before=$(cd "$src" && find results/calibration -type f -print0 | sort -z | xargs -0 sha256sum)
touch "$tmp/marker"

# A named folder, relative to where the script is run from.
(cd "$tmp" && MEASURE=0 MOESIM="$moesim" "$src/scripts/calibrate-cpu.sh" out > /dev/null 2> err)
grep -q "writing into $tmp/out" "$tmp/err" || { echo "FAIL stderr: $(cat "$tmp/err")"; exit 1; }
# The fit is deterministic: the same measurements give the committed profile (comments aside).
if ! diff <(grep -v '^#' "$src/results/calibration/cpu-profile.pbtxt") \
          <(grep -v '^#' "$tmp/out/cpu-profile.pbtxt"); then
  echo "FAIL the refit profile differs from the committed one"; exit 1
fi
for f in calibrate.txt validation.txt validation.json validation.md; do
  [[ -s "$tmp/out/$f" ]] || { echo "FAIL $f missing"; exit 1; }
done

# No folder: a new one under TMPDIR, named on stderr.
(cd "$tmp" && TMPDIR="$tmp" MEASURE=0 MOESIM="$moesim" "$src/scripts/calibrate-cpu.sh" \
  > /dev/null 2> err2)
made=$(sed -n 's/^calibrate-cpu.sh: writing into //p' "$tmp/err2")
[[ "$made" == "$tmp"/moesim-calibration.* && -s "$made/cpu-profile.pbtxt" ]] ||
  { echo "FAIL default folder: '$made'"; exit 1; }

after=$(cd "$src" && find results/calibration -type f -print0 | sort -z | xargs -0 sha256sum)
[[ "$before" == "$after" ]] || { echo "FAIL results/calibration changed"; exit 1; }
written=$(find "$src/results/calibration" -newer "$tmp/marker")
[[ -z "$written" ]] || { echo "FAIL results/calibration written: $written"; exit 1; }
echo "ok"
