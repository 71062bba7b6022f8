#!/usr/bin/env bash
# check-limits.sh: issue 14's size limits on bench/. Prints every function in
# bench/*.c longer than MAX_FN lines (signature to closing brace) and every
# bench/ file longer than MAX_FILE lines. Exit 1 when anything is over.
# usage: scripts/check-limits.sh [MAX_FN [MAX_FILE]]   (defaults 80, 900)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
max_fn=${1:-80}
max_file=${2:-900}
bad=0
for f in "$root"/bench/*.c "$root"/bench/*.h; do
  n=$(wc -l < "$f")
  if [ "$n" -gt "$max_file" ]; then
    echo "file bench/$(basename "$f"): $n lines (max $max_file)"
    bad=1
  fi
done
# A function starts at a line beginning with an identifier and containing
# '(' that is outside any brace, and ends at the '}' in column 0 closing it.
out=$(awk -v max="$max_fn" '
  FNR == 1 { depth = 0; start = 0; sig = 0 }
  {
    line = $0
    if (depth == 0 && start == 0 && line ~ /^[A-Za-z_].*\(/ && line !~ /;[ \t]*$/ && line !~ /^#/) {
      sig = FNR; name = line
    }
    nopen = gsub(/\{/, "{", line); nclose = gsub(/\}/, "}", line)
    if (depth == 0 && nopen > 0 && sig > 0 && line !~ /=/) start = sig
    depth += nopen - nclose
    if (depth == 0 && start > 0 && nclose > 0) {
      len = FNR - start + 1
      if (len > max) {
        sub(/\(.*/, "", name); n = split(name, w, /[ \t*]+/)
        fname = FILENAME; sub(/.*\//, "", fname)
        printf "function bench/%s:%d %s: %d lines (max %d)\n", fname, start, w[n], len, max
      }
      start = 0; sig = 0
    }
    if (depth == 0 && line ~ /;[ \t]*$/ && start == 0) sig = 0
  }
' "$root"/bench/*.c)
if [ -n "$out" ]; then
  echo "$out" | sort -t: -k3 -n -r
  bad=1
fi
exit $bad
