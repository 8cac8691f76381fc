#!/usr/bin/env bash
# Builds the libFuzzer targets (if needed) and runs each for a bounded time, for CI.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]      (default 60)
#
# Each target runs on a copy of its committed corpus (tests/fuzz/corpus/<name>) in
# a temporary directory, so the repository is never modified. Prints one summary
# line per target and exits non-zero if any target found a crash, leak, timeout or
# out-of-memory; the crash artifacts and logs are then kept and their path printed.
#
# Environment:
#   CUTOFF_FUZZ_BUILD   build directory (default: build-fuzz at the repository root)
#   CUTOFF_FUZZ_JOBS    parallel compile jobs (default 2)
#   CUTOFF_FUZZ_KEEP=1  keep the temporary directory even when every target passed
#   CC, CXX             compilers for a first configure (default clang, clang++)
set -euo pipefail

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || (( secs < 1 )); then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${CUTOFF_FUZZ_BUILD:-$root/build-fuzz}
jobs=${CUTOFF_FUZZ_JOBS:-2}
targets=(fuzz_scenario fuzz_countries fuzz_checkpoint fuzz_info)

work=$(mktemp -d "${TMPDIR:-/tmp}/cutoff-fuzz.XXXXXX")

# --- build ------------------------------------------------------------------
build_log=$work/build.log
if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "run.sh: configuring $build" >&2
  if ! CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S "$root" -B "$build" -DCUTOFF_FUZZ=ON \
      -DCUTOFF_CUDA=OFF -DCUTOFF_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2
    echo "run.sh: configure failed (log: $build_log)" >&2
    exit 2
  fi
fi
# Only the fuzz targets: cutoff_core and the program are not needed (nor built).
if ! cmake --build "$build" --target "${targets[@]}" -j "$jobs" >>"$build_log" 2>&1; then
  tail -n 30 "$build_log" >&2
  echo "run.sh: build failed (log: $build_log)" >&2
  exit 2
fi

# --- run --------------------------------------------------------------------
failed=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  bin=$build/tests/fuzz/$t
  corpus=$work/$name/corpus
  artifacts=$work/$name/artifacts
  log=$work/$name/fuzz.log
  mkdir -p "$corpus" "$artifacts" "$work/$name/tmp"
  cp -R "$root/tests/fuzz/corpus/$name/." "$corpus/"
  seeds=$(find "$corpus" -type f | wc -l)
  # fuzz_info: a file HDF5 loops on costs its child process 5 s of CPU before it is stopped.
  timeout=10; [[ $t == fuzz_info ]] && timeout=30
  args=(-max_total_time="$secs" -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  if [[ -f $root/tests/fuzz/$name.dict ]]; then args+=(-dict="$root/tests/fuzz/$name.dict"); fi

  # TMPDIR: the scenario fuzzer's private directory lives under it.
  start=$SECONDS
  set +e
  TMPDIR=$work/$name/tmp "$bin" "${args[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  took=$((SECONDS - start))

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  units=$(find "$corpus" -type f | wc -l)
  if (( rc == 0 )); then
    status=ok
  else
    failed=1
    # The most telling line of the report: sanitizer, assertion, exception, libFuzzer.
    what=""
    for pat in 'ERROR: (AddressSanitizer|LeakSanitizer): [^(]*' 'runtime error: .*' \
               "Assertion '.*' failed" "terminate called after throwing an instance of '[^']*'" \
               'ERROR: libFuzzer: .*'; do
      what=$(grep -m1 -oE "$pat" "$log" || true)
      [[ -n $what ]] && break
    done
    status="FAILED (exit $rc${what:+: ${what:0:160}})"
  fi
  printf '%-15s %s: %s execs in %ss, cov %s, ft %s, corpus %s -> %s units, peak rss %s MB\n' \
    "$t" "$status" "${execs:-?}" "$took" "${cov:-?}" "${ft:-?}" "$seeds" "$units" "${rss:-?}"
  if (( rc != 0 )); then
    echo "  log: $log"
    echo "  artifacts: $artifacts"
    for a in "$artifacts"/*; do [[ -e $a ]] && echo "    $a"; done
  fi
done

if (( failed )); then
  echo "run.sh: findings kept in $work" >&2
  exit 1
fi
if [[ ${CUTOFF_FUZZ_KEEP:-0} == 1 ]]; then
  echo "run.sh: kept $work" >&2
else
  rm -rf "$work"
fi
