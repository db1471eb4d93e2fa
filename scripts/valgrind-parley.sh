#!/usr/bin/env bash
# Runs the release server under valgrind's memcheck, for `make valgrind`: any memory error or
# definite leak makes the process exit with 99 at shutdown, which the test harness reports.
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --num-callers=30 "$(dirname "$0")/../build/parley" "$@"
