#!/usr/bin/env bash
# Golden test: regenerates every output with scripts/update-golden.sh into a temporary folder
# and compares it with tests/golden/expected/. On a difference: a unified diff and the command
# that accepts the new output (review the diff first: it is the change users will see).
#   tests/golden/check_golden.sh FPSCOPE
set -uo pipefail
[ $# -eq 1 ] || {
  echo "usage: $0 FPSCOPE" >&2
  exit 2
}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
expected="$root/tests/golden/expected"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/fpscope_golden.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/update-golden.sh" "$1" "$tmp/actual" >/dev/null || exit 1
if diff -ru "$expected" "$tmp/actual" >"$tmp/diff"; then
  echo "golden: $(find "$expected" -type f | wc -l) files match"
  exit 0
fi
lines=$(wc -l <"$tmp/diff")
head -n 400 "$tmp/diff"
[ "$lines" -le 400 ] || echo "... ($lines lines of diff in all)"
echo
echo "golden: the output differs from tests/golden/expected/ (--- expected, +++ actual)."
echo "If the change is intended, regenerate and commit the expected files:"
echo "  scripts/update-golden.sh $1"
exit 1
