#!/usr/bin/env bash
# Development certificates for raftkv: a CA and one certificate per name, usable both as a TLS
# server certificate and as a client certificate (peer RPC is mutual TLS; with CLIENT_CERT_AUTH the
# certificate's name is a role subject in AUTH_TOKENS_FILE, e.g. "cert:alice").
# Usage: scripts/gen-certs.sh [OUT_DIR] [NAME...]     (defaults: deploy/certs app1 app2 app3 app4)
# Each certificate's SANs are the name, localhost and 127.0.0.1.
# Writes OUT_DIR/ca.pem, OUT_DIR/<name>.pem and OUT_DIR/<name>-key.pem, and the CA key to
# CA_DIR/ca-key.pem (default: OUT_DIR's sibling OUT_DIR-ca), so mounting OUT_DIR into a node never
# hands it the CA key. An existing CA is reused, so new certificates stay trusted by running nodes
# (a CA key left in OUT_DIR by an older version is moved to CA_DIR).
# Modes: CA_DIR 0700 and the CA key 0600; node keys 0600, or 0640 with group CERTS_GID when it is set
# (containers run as uid/gid 1000 `node`: `make certs` passes CERTS_GID=1000 so they can read them).
# CERT_DAYS (default 825) sets the validity; a negative value makes an already expired certificate.
# NOT for production: keys are unencrypted.
set -euo pipefail
umask 077
out="${1:-deploy/certs}"
shift || true
nodes=("$@")
if [ "${#nodes[@]}" -eq 0 ]; then nodes=(app1 app2 app3 app4); fi
days="${CERT_DAYS:-825}"
ca_dir="${CA_DIR:-${out%/}-ca}"
if [ "${CERTS_WORLD_READABLE:-0}" = 1 ]; then
  echo "gen-certs.sh: CERTS_WORLD_READABLE is no longer supported (keys are never world-readable); use CERTS_GID" >&2
fi
mkdir -p "$out" "$ca_dir"
chmod 755 "$out"
chmod 700 "$ca_dir"
# Never committed: the CA directory ignores itself.
[ -f "$ca_dir/.gitignore" ] || echo '*' >"$ca_dir/.gitignore"
if [ -f "$out/ca-key.pem" ] && [ ! -f "$ca_dir/ca-key.pem" ]; then mv "$out/ca-key.pem" "$ca_dir/ca-key.pem"; fi
rm -f "$out/ca-key.pem"
if [ ! -f "$out/ca.pem" ] || [ ! -f "$ca_dir/ca-key.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=${CA_NAME:-raftkv development CA}" \
    -keyout "$ca_dir/ca-key.pem" -out "$out/ca.pem" 2>/dev/null
fi
chmod 600 "$ca_dir/ca-key.pem"
chmod 644 "$out/ca.pem"
for n in "${nodes[@]}"; do
  ext="$(mktemp)"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "$n" >"$ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$n" -keyout "$out/$n-key.pem" -out "$out/$n.csr" 2>/dev/null
  openssl x509 -req -sha256 -days "$days" -in "$out/$n.csr" -CA "$out/ca.pem" -CAkey "$ca_dir/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$out/$n.pem" 2>/dev/null
  rm -f "$out/$n.csr" "$ext"
  chmod 644 "$out/$n.pem"
  chmod 600 "$out/$n-key.pem"
  if [ -n "${CERTS_GID:-}" ]; then
    if chgrp "$CERTS_GID" "$out/$n-key.pem" 2>/dev/null; then
      chmod 640 "$out/$n-key.pem"
    else
      echo "gen-certs.sh: cannot give $out/$n-key.pem to group $CERTS_GID (run as root, or as a member of that group); it stays readable by its owner only" >&2
    fi
  fi
done
echo "certificates in $out: ca.pem ${nodes[*]/%/.pem}; CA key in $ca_dir"
