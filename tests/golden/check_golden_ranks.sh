#!/usr/bin/env bash
# Golden test of the rank-set outputs: regenerates them with tests/golden/update-golden-ranks.sh
# into a temporary folder and compares them with tests/golden/ranks_expected/.
#   tests/golden/check_golden_ranks.sh FPSCOPE GEN
set -uo pipefail
[ $# -eq 2 ] || {
  echo "usage: $0 FPSCOPE GEN" >&2
  exit 2
}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
expected="$root/tests/golden/ranks_expected"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/fpscope_golden_ranks_check.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$root/tests/golden/update-golden-ranks.sh" "$1" "$2" "$tmp/actual" >/dev/null || exit 1
if diff -ru "$expected" "$tmp/actual" >"$tmp/diff"; then
  echo "golden ranks: $(find "$expected" -type f | wc -l) files match"
  exit 0
fi
lines=$(wc -l <"$tmp/diff")
head -n 400 "$tmp/diff"
[ "$lines" -le 400 ] || echo "... ($lines lines of diff in all)"
echo
echo "golden ranks: the output differs from tests/golden/ranks_expected/ (--- expected, +++ actual)."
echo "If the change is intended, regenerate and commit the expected files:"
echo "  tests/golden/update-golden-ranks.sh $1 $2"
exit 1
