# debs.sh: sourced by setup.sh and fuzz.sh (not run on its own).
# debs_missing PACKAGE...: prints the Debian packages among them that are
# not installed, one a line.
debs_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || echo "$p"
  done
}
