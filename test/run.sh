#!/usr/bin/env bash
# `npm test`: the whole suite, in two passes.
#   1. the postgres, pglite and unit projects, two Jest workers at a time;
#   2. the `alone` project, one file at a time with nothing else running: tests of feedback that
#      reads the machine's own load (expiry pacing) cannot tell a competing write load they create
#      from a neighbouring test file's.
# Every pass runs even when an earlier one failed; each prints its name, result and duration, and
# the script exits non-zero if any failed.
# Arguments go to both passes (e.g. `npm test -- test/unit`); a pass they select nothing in passes.
# The time factor deadlines scale by (test/helpers/time-factor.js) is measured once, for both.
set -uo pipefail
cd "$(dirname "$0")/.."
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
export JEST_RUN_ID="${JEST_RUN_ID:-$$-$(date +%s)}"
TEST_TIME_FACTOR="$(node test/helpers/time-factor.js)" || exit 1
export TEST_TIME_FACTOR
echo "test deadlines x${TEST_TIME_FACTOR} (TEST_TIME_FACTOR)"

summary=()
failed=0
# pass NAME JEST-ARGS...: runs one pass, records its result and duration.
pass() {
  local name="$1"
  shift
  local started=$SECONDS
  echo "== pass ${name}: started $(date -u +%H:%M:%S)"
  local result=passed
  if ! npx jest "$@"; then
    result=FAILED
    failed=1
  fi
  local line
  line="pass ${name}: ${result} in $((SECONDS - started)) s"
  echo "== ${line}"
  summary+=("${line}")
}

pass "postgres+pglite+unit" --selectProjects postgres pglite unit --passWithNoTests -- "$@"
pass "alone" --selectProjects alone --runInBand --passWithNoTests -- "$@"

echo "== summary"
printf '   %s\n' "${summary[@]}"
exit "${failed}"
