#!/usr/bin/env bash
# `npm test`: the whole suite, in two passes.
#   1. the postgres, pglite and unit projects, two Jest workers at a time;
#   2. the `alone` project, one file at a time with nothing else running: tests of feedback that
#      reads the machine's own load (expiry pacing) cannot tell a competing write load they create
#      from a neighbouring test file's.
# Arguments go to both passes (e.g. `npm test -- test/unit`); a pass they select nothing in passes.
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
export JEST_RUN_ID="${JEST_RUN_ID:-$$-$(date +%s)}"
npx jest --selectProjects postgres pglite unit --passWithNoTests -- "$@"
npx jest --selectProjects alone --runInBand --passWithNoTests -- "$@"
