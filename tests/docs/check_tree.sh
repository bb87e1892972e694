#!/usr/bin/env bash
# The tree's own rules (issue 18): no source file over 800 lines, and no
# tracked file points outside the repository (the product stands alone).
set -euo pipefail
cd "$(dirname "$0")/../.."
bad=0
while read -r n f; do
	[ "$f" = total ] && continue
	if [ "$n" -gt 800 ]; then
		echo "check_tree: $f has $n lines (limit 800: split it along a seam)"
		bad=1
	fi
done < <(git ls-files -z '*.c' '*.h' '*.py' '*.sh' | xargs -0 wc -l)
if git grep -n -I -e '\.\./shared' -e '/work/shared' -- . ':!tests/docs/check_tree.sh'; then
	echo "check_tree: the lines above point outside the repository"
	bad=1
fi
[ "$bad" -eq 0 ] && echo "check_tree: no source file over 800 lines, nothing points outside the repository"
exit "$bad"
