#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs the Debian packages cairn
# needs, builds the release and the ASan+UBSan configurations, and runs every test in
# both with ctest (which prints its summary).
#
#   tools/test.sh            everything (what CI runs)
#   tools/test.sh release    one configuration only (release | debug | asan | tsan)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh

presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(release asan)
jobs=$(nproc 2>/dev/null || echo 2)

status=0
for preset in "${presets[@]}"; do
  echo "==> ${preset}: configure and build" >&2
  cmake --preset "${preset}" >/dev/null
  cmake --build --preset "${preset}" -j "${jobs}"
  echo "==> ${preset}: test" >&2
  # Sanitizer builds run slower; the crash tests scale their iterations down there.
  if ! ctest --preset "${preset}" -j "${jobs}" --timeout 900; then
    status=1
  fi
done
exit ${status}
