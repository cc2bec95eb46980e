#!/usr/bin/env bash
# Development certificates for raftkv: a CA and one certificate per node, usable both as a TLS
# server certificate and as a client certificate (peer RPC is mutual TLS).
# Usage: scripts/gen-certs.sh [OUT_DIR] [NODE...]     (defaults: deploy/certs app1 app2 app3 app4)
# Each node certificate's SANs are the node's name, localhost and 127.0.0.1.
# Writes OUT_DIR/ca.pem, OUT_DIR/ca-key.pem, OUT_DIR/<node>.pem, OUT_DIR/<node>-key.pem.
# An existing CA in OUT_DIR is reused, so new node certificates stay trusted by running nodes.
# NOT for production: keys are unencrypted and the CA key sits next to the certificates.
set -euo pipefail
out="${1:-deploy/certs}"
shift || true
nodes=("$@")
if [ "${#nodes[@]}" -eq 0 ]; then nodes=(app1 app2 app3 app4); fi
days="${CERT_DAYS:-825}"
mkdir -p "$out"
if [ ! -f "$out/ca.pem" ] || [ ! -f "$out/ca-key.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=${CA_NAME:-raftkv development CA}" \
    -keyout "$out/ca-key.pem" -out "$out/ca.pem" 2>/dev/null
fi
for n in "${nodes[@]}"; do
  ext="$(mktemp)"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "$n" >"$ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$n" -keyout "$out/$n-key.pem" -out "$out/$n.csr" 2>/dev/null
  openssl x509 -req -sha256 -days "$days" -in "$out/$n.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$out/$n.pem" 2>/dev/null
  rm -f "$out/$n.csr" "$ext"
done
chmod 600 "$out"/*-key.pem
# Containers run as other users than the one who made the files: let them read the keys.
if [ "${CERTS_WORLD_READABLE:-0}" = 1 ]; then chmod 644 "$out"/*-key.pem; fi
echo "certificates in $out: ca.pem ${nodes[*]/%/.pem}"
