#!/usr/bin/env bash
# The one test command (README and .ci/run both call `npm test`, which runs this).
# Installs the Debian packages the tests need, then runs every vitest project and prints a
# closing 'N passed, N failed' line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh || { echo "setup-system failed"; exit 1; }
mkdir -p test-results
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
rc=$?
node -e '
const r = JSON.parse(require("fs").readFileSync("test-results/vitest.json", "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
exit $rc
