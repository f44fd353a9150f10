#!/usr/bin/env bash
# clang-format check of every tracked C++/CUDA file: `clang-format --dry-run -Werror` over
# `git ls-files '*.h' '*.hpp' '*.cpp' '*.cc' '*.cu' '*.cuh'`, from the source dir (its
# .clang-format). Prints the failing files and exits 1; exits 77 (CTest: skipped) with a message
# when clang-format or git is missing or the source dir is not a git work tree.
#   check_format.sh <source dir> [clang-format executable]
set -u
src="${1:?usage: check_format.sh <source dir> [clang-format]}"
cf="${2:-clang-format}"
skip=77
if ! command -v "$cf" >/dev/null 2>&1; then
  echo "SKIP: clang-format ('$cf') not found: style check not run"
  exit $skip
fi
if ! command -v git >/dev/null 2>&1; then
  echo "SKIP: git not found: cannot list the tracked files"
  exit $skip
fi
cd "$src" || exit 2
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "SKIP: $src is not a git work tree: cannot list the tracked files"
  exit $skip
fi
mapfile -t files < <(git ls-files -- '*.h' '*.hpp' '*.cpp' '*.cc' '*.cu' '*.cuh' | sort -u)  # unmerged: 3 entries
if [ "${#files[@]}" -eq 0 ]; then
  echo "FAIL: git ls-files found no C++ files in $src"
  exit 1
fi
bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue  # deleted in the work tree, not yet committed
  if ! "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
echo "clang-format: $(("${#files[@]}" - "${#bad[@]}")) of ${#files[@]} files formatted ($("$cf" --version | head -1))"
if [ "${#bad[@]}" -gt 0 ]; then
  echo "FAIL: ${#bad[@]} files are not clang-formatted (fix: clang-format -i FILE):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "PASS"
