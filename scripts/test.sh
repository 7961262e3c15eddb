#!/usr/bin/env bash
# The one test command (README and .ci/run both call `npm test`, which runs this).
# Installs the Debian packages the tests need, runs the linters (`npm run lint`: ESLint with type
# information, the import floors, Prettier), then every vitest project, and prints a closing
# 'lint: …' and 'N passed, N failed' line. Fails if either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh || { echo "setup-system failed"; exit 1; }
mkdir -p test-results
npm run --silent lint
lint_rc=$?
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
rc=$?
node -e '
const r = JSON.parse(require("fs").readFileSync("test-results/vitest.json", "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
if [ $lint_rc -eq 0 ]; then echo "lint: clean"; else echo "lint: FAILED (run npm run lint; npm run format fixes formatting)"; fi
[ $rc -ne 0 ] && exit $rc
exit $lint_rc
