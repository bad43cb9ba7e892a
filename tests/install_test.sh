#!/usr/bin/env bash
# `cmake --install` gives a prefix that works anywhere (moesim issue #19): installed into a
# temporary prefix, moved elsewhere, and run from / with no MOESIM_* variable set, the commands find
# PREFIX/share/moesim beside themselves and never the source tree.
# Usage: install_test.sh BUILD SOURCE CMAKE [sanitized]
# (sanitized: skip the check that no binary holds the source tree's path, since AddressSanitizer
# records every global's source file in the binary for its reports.)
set -uo pipefail
build=$1 source=$2 cmake=$3 sanitized=${4:-}
dir=$(cd "$(mktemp -d)" && pwd -P)  # /proc/self/exe names the real path
trap 'rm -rf "$dir"' EXIT
unset MOESIM_DATA_DIR MOESIM_CATALOG_DIR MOESIM_DEFAULT_SCENARIO
failed=0
fail() { echo "FAIL $*"; failed=1; }
ok() { echo "ok   $*"; }

# expect_out NAME TEXT COMMAND...: run from /, exit status 0 and TEXT (a whole line) on stdout.
expect_out() {
  local name=$1 text=$2 out status
  shift 2
  out=$(cd / && "$@" 2>&1)
  status=$?
  if [ "$status" -eq 0 ] && grep -qxF -- "$text" <<<"$out"; then ok "$name"; else
    fail "$name: exit status $status, no line \"$text\" in:"
    head -20 <<<"$out"
  fi
}
# expect_err NAME TEXT COMMAND...: run from /, exit status 1 and exactly TEXT on stderr.
expect_err() {
  local name=$1 text=$2 err status
  shift 2
  err=$(cd / && "$@" 2>&1 >/dev/null)
  status=$?
  if [ "$status" -eq 1 ] && [ "$err" = "$text" ]; then ok "$name"; else
    fail "$name: exit status $status"
    echo "  got:      $err"
    echo "  expected: $text"
  fi
}

"$cmake" --install "$build" --prefix "$dir/staged" >/dev/null || { echo "FAIL cmake --install"; exit 1; }
mv "$dir/staged" "$dir/moved"  # relocatable: nothing installed knows where it was installed
p=$dir/moved data=$dir/moved/share/moesim

# The layout README "Install" shows.
for path in bin/moesim share/moesim/scenarios/default.pbtxt share/moesim/scenarios/clusters \
            include/moesim/models/model_spec.h include/moesim/proto/model.pb.h \
            lib/libmoesim_models.a lib/cmake/moesim/moesimConfig.cmake \
            lib/cmake/moesim/moesimConfigVersion.cmake lib/cmake/moesim/moesimTargets.cmake; do
  [ -e "$p/$path" ] || fail "layout: no $path"
done
[ ! -e "$build/backend/moebench" ] || [ -x "$p/bin/moebench" ] || fail "layout: no bin/moebench"
models=$(ls "$source/models/catalog"/*.pbtxt | wc -l)
installed=$(ls "$data/catalog"/*.pbtxt | wc -l)
[ "$installed" -eq "$models" ] || fail "layout: $installed catalog files, the source has $models"

# No binary holds a path into the source or build tree: the source folder's path (which the
# build folder usually lies in), and the build folder's, counted as bytes in each binary.
if [ -z "$sanitized" ]; then
  for exe in "$p"/bin/*; do
    for tree in "$(cd "$source" && pwd -P)" "$(cd "$build" && pwd -P)"; do
      n=$(grep -a -c -F -- "$tree" "$exe")
      [ "$n" -eq 0 ] || fail "$(basename "$exe") holds $tree ($n lines)"
    done
  done
  ok "no source or build path in bin/"
fi

# From /, no variable set: the default scenario with Mixtral-8x7B from the installed catalog
# (arXiv:2401.04088 Table 1: 8 experts, top-2, dim 4096, hidden_dim 14336).
mixtral="  model    mixtral-8x7b: 8 experts, top-2, hidden 4096, expert FFN 14336, BF16"
expect_out "default scenario" "$mixtral" "$p/bin/moesim"
# The seed example from PREFIX/share: GPU 0 keeps t2 (E0), sends t0 (E2) and t3 (E3) to GPU 1 and
# t1 (E7) to GPU 3: row 1 2 0 1, 3 sent; it receives 3 (tests/moe_layer_test.cc).
expect_out "seed example from share/moesim" \
  "  gpu0          1      2      0      1  |       3         3" \
  "$p/bin/moesim" simulate "$data/scenarios/seed_example.pbtxt"
expect_out "model list" "moesim model list: $models models in $data/catalog" "$p/bin/moesim" model list
if [ -x "$p/bin/moebench" ]; then
  out=$(cd / && "$p/bin/moebench" gemm --model no-such-model 2>&1)
  grep -qF "unknown model (not in $data/catalog)" <<<"$out" && ok "moebench's catalog" ||
    fail "moebench's catalog: $out"
fi

# A copy of the binary alone finds nothing, says where it looked, and MOESIM_DATA_DIR rescues it.
mkdir -p "$dir/lonely/bin" && cp "$p/bin/moesim" "$dir/lonely/bin/"
valid="a folder holding catalog/ and scenarios/, as PREFIX/share/moesim after \`cmake --install build --prefix PREFIX\`"
expect_err "lone binary" "moesim: error: moesim's data not found: MOESIM_DATA_DIR is unset and $dir/lonely/share/moesim (beside the executable $dir/lonely/bin/moesim) has no catalog/ folder; valid: MOESIM_DATA_DIR set to $valid" \
  "$dir/lonely/bin/moesim"
expect_out "lone binary, MOESIM_DATA_DIR" "$mixtral" env MOESIM_DATA_DIR="$data" "$dir/lonely/bin/moesim"
expect_err "MOESIM_DATA_DIR wrong" "moesim: error: MOESIM_DATA_DIR = $dir/nowhere: no such folder; valid: $valid" \
  env MOESIM_DATA_DIR="$dir/nowhere" "$p/bin/moesim"

# The installed catalog is what it reads: without it the installed moesim fails, though the source
# tree's models/catalog is still there.
rm -r "$data/catalog"
expect_err "catalog removed" "moesim: error: moesim's data not found: MOESIM_DATA_DIR is unset and $data (beside the executable $p/bin/moesim) has no catalog/ folder; valid: MOESIM_DATA_DIR set to $valid" \
  "$p/bin/moesim"

# The Python module, when the build has it (tests/CMakeLists.txt sets MOESIM_TEST_PYTHON, the
# interpreter, and MOESIM_TEST_PYTHON_DIR, the package folder under PREFIX): imported from / with
# PYTHONPATH at the moved prefix, it finds the installed data (the default scenario names a catalog
# model; the catalog was removed above, so it is put back first) and runs the seed example, GPU 0's
# dispatch row as above. The module holds no source or build path either.
if [ -n "${MOESIM_TEST_PYTHON_DIR:-}" ]; then
  cp -r "$source/models/catalog" "$data/catalog"
  site=$p/$MOESIM_TEST_PYTHON_DIR
  for path in moesim/__init__.py moesim/_moesim.*.so; do
    compgen -G "$site/$path" >/dev/null || fail "layout: no $MOESIM_TEST_PYTHON_DIR/$path"
  done
  if [ -z "$sanitized" ]; then
    for tree in "$(cd "$source" && pwd -P)" "$(cd "$build" && pwd -P)"; do
      n=$(cat "$site"/moesim/* | grep -a -c -F -- "$tree")
      [ "$n" -eq 0 ] || fail "the Python module holds $tree ($n lines)"
    done
    ok "no source or build path in the Python module"
  fi
  expect_out "python: import moesim from /" "mixtral-8x7b [1, 2, 0, 1] $data" \
    env PYTHONPATH="$site" "$MOESIM_TEST_PYTHON" -c "import moesim, os
seed = moesim.simulate('$data/scenarios/seed_example.pbtxt')
print(moesim.simulate()['model'], seed['sendMatrices'][0]['tokens'][0], os.environ['MOESIM_DATA_DIR'])"
fi
exit $failed
