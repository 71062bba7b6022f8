#!/usr/bin/env bash
# check-limits.sh: issue 14's size limits on bench/. Prints every function in
# bench/*.c longer than MAX_FN lines (signature to closing brace) and every
# bench/ file longer than MAX_FILE lines. Exit 1 when anything is over.
# Also prints every include circle in bench/: a file that includes a
# header that includes the file's own header back, or a circle of headers.
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
# Include circles (ARCHITECTURE.md: no file includes a header that
# includes it back): a circle of bench/ headers, or x.c / x.h including
# y.h while y.h includes x.h.
circles=$(python3 - "$root/bench" <<'PY'
import os, re, sys
d = sys.argv[1]
allowed = set()
inc = {}
for f in sorted(os.listdir(d)):
    if f.endswith((".c", ".h")):
        txt = open(os.path.join(d, f)).read()
        inc[f] = [h for h in re.findall(r'^#include "([^"]+)"', txt, re.M)
                  if os.path.exists(os.path.join(d, h)) and h != f]
for f, hs in sorted(inc.items()):
    own = f[:-2] + ".h"
    for h in hs:
        if h != own and own in inc.get(h, []) and (f, h) not in allowed:
            print("circle: %s includes %s, which includes %s" % (f, h, own))
state, stack, seen = {}, [], set()
def visit(n):
    state[n] = 1
    stack.append(n)
    for m in inc.get(n, ()):
        if state.get(m) == 1:
            c = stack[stack.index(m):]
            k = c.index(min(c))
            seen.add(" -> ".join(c[k:] + c[:k] + [c[k]]))
        elif not state.get(m):
            visit(m)
    stack.pop()
    state[n] = 2
for n in sorted(f for f in inc if f.endswith(".h")):
    if not state.get(n):
        visit(n)
for c in sorted(seen):
    print("circle of headers:", c)
PY
)
if [ -n "$circles" ]; then
  echo "$circles"
  bad=1
fi
exit $bad
