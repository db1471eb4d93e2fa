#!/usr/bin/env bash
# Runs each cmocka unit-test binary given as an argument and prints one summary line that CI
# can read ("N passed, N failed"). Exits non-zero if any binary failed.
set -u
passed=0; failed=0
for t in "$@"; do
  if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t"; fi
done
echo "unit test binaries: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
