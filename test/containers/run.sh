#!/usr/bin/env bash
# `make test-containers`: builds the image from the unchanged Dockerfile and runs the unchanged
# docker-compose files for real, under podman driven by docker-compose, then checks what the README
# promises (test/containers/check.ts prints one line per point and `containers: N passed, N failed`).
#
# Isolation: `podman system service` runs inside a network namespace made here with only loopback
# up, entered with `nsenter --net` (`ip netns exec` would remount /sys and hide the cgroup mounts).
# Container networks, published ports and every request the checks send stay in that namespace;
# nothing here reaches a container address from the host namespace. The only thing on the host
# network is `podman build --network host` (npm ci reaches the registry). On exit, also on failure:
# containers, volumes, networks, the service, the namespace, and the images this run made are removed
# (CONTAINERS_KEEP_IMAGE=1 keeps raftkv:local and its build cache for a faster rerun). The base image
# stand-in (test/containers/stand-in.sh) is kept and reused.
# Needs root; installs podman, runc, netavark, aardvark-dns, docker-compose, debootstrap when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir="$PWD"
t_start=$SECONDS
say() { echo "containers: $*"; }

if [ "$(id -u)" != 0 ]; then echo "error: make test-containers needs root (podman, network namespaces)" >&2; exit 1; fi
need=()
for tool in podman:podman runc:runc netavark:netavark docker-compose:docker-compose debootstrap:debootstrap ip:iproute2 iptables:iptables openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/lib/podman/${tool%%:*}" ] || need+=("${tool#*:}")
done
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export CONTAINERS_CONF="$root_dir/test/containers/containers.conf"
export COMPOSE_PROJECT_NAME=raftkv-ct
run_id="raftkv-ct-$$"
ns="$run_id"
run_dir="/run/$run_id"
sock="$run_dir/podman.sock"
export DOCKER_HOST="unix://$sock"
svc_pid=""
deploy_before="$(find deploy -type f | sort)"
images_before="$(podman images -aq --no-trunc | sort -u)"
# Includes build containers (buildah's working containers), which an interrupted build leaves behind.
containers_before="$(podman ps -aq --external --no-trunc | sort -u)"
base_image="$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile | head -1)"
in_ns() { nsenter --net="/var/run/netns/$ns" "$@"; }
compose_all() { docker-compose -f docker-compose.yml -f docker-compose.secure.yml "$@"; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "$svc_pid" ]; then
    # Both compose configurations, volumes included; then anything still labelled with the project.
    RAFT_CLUSTER_SECRET=x RAFTKV_TOKENS_FILE=/dev/null compose_all down -v --remove-orphans -t 5 >/dev/null 2>&1
    kill "$svc_pid" 2>/dev/null
    wait "$svc_pid" 2>/dev/null
  fi
  podman ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | xargs -r podman rm -f -v >/dev/null 2>&1
  podman ps -aq --filter "name=^$COMPOSE_PROJECT_NAME-probe" | xargs -r podman rm -f -v >/dev/null 2>&1
  podman volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | xargs -r podman volume rm -f >/dev/null 2>&1
  comm -13 <(echo "$containers_before") <(podman ps -aq --external --no-trunc | sort -u) | xargs -r podman rm -f >/dev/null 2>&1
  podman network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | xargs -r podman network rm -f >/dev/null 2>&1
  if [ "${CONTAINERS_KEEP_IMAGE:-0}" != 1 ]; then
    podman rmi -f raftkv:local >/dev/null 2>&1
    # Intermediate build images this run made (the base stand-in is kept for the next run).
    base_id="$(podman image inspect --format '{{.Id}}' "docker.io/library/$base_image" 2>/dev/null)"
    comm -13 <(echo "$images_before") <(podman images -aq --no-trunc | sort -u) | grep -vx "${base_id:-none}" | xargs -r podman rmi -f >/dev/null 2>&1
  fi
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$run_dir" "${tokens_dir:-}"
  # Files `make certs` added under deploy/ (certificates, keys) go; ones that were there stay.
  comm -13 <(echo "$deploy_before") <(find deploy -type f | sort) | xargs -r rm -f
  say "cleaned up (namespace $ns, service, containers, volumes, images) in total $((SECONDS - t_start)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$run_dir"

# The base image: the real one if present, else the stand-in (built from nothing when missing).
t0=$SECONDS
if [ -z "$base_image" ]; then echo "error: no 'ARG NODE_IMAGE=' in Dockerfile" >&2; exit 1; fi
if podman image exists "docker.io/library/$base_image" || podman image exists "$base_image"; then
  say "base image $base_image present, reused"
else
  test/containers/stand-in.sh "$base_image"
fi
say "base image ready in $((SECONDS - t0)) s"

# The image, from the unchanged Dockerfile (docker format keeps the HEALTHCHECK).
t0=$SECONDS
if ! podman build --format docker --network host -t raftkv:local . >"$run_dir/build.log" 2>&1; then
  tail -30 "$run_dir/build.log" >&2
  rm -f "$run_dir/build.log"
  echo "error: podman build failed" >&2
  exit 1
fi
rm -f "$run_dir/build.log"
build_s=$((SECONDS - t0))
say "image raftkv:local built in $build_s s"

# The namespace and the podman service in it; docker-compose talks to it over a unix socket.
ip netns add "$ns"
in_ns ip link set lo up
# Its own session, so a Ctrl-C to the test does not stop it before the cleanup has used it.
in_ns setsid podman system service --time=0 "unix://$sock" >"$run_dir/service.log" 2>&1 &
svc_pid=$!
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$run_dir/service.log" >&2; echo "error: podman system service did not start" >&2; exit 1; }

# Point 6 needs certificates and a tokens file (a copy of the example, readable by the container user).
make -s certs >/dev/null
tokens_dir="$(mktemp -d)"
chmod 755 "$tokens_dir"
install -m 0644 deploy/auth/tokens.example.json "$tokens_dir/tokens.json"
export RAFTKV_TOKENS_FILE="$tokens_dir/tokens.json"
RAFT_CLUSTER_SECRET="$(openssl rand -hex 32)"
export RAFT_CLUSTER_SECRET

# A project left behind by an interrupted run would hold the ports and volumes.
compose_all down -v --remove-orphans -t 5 >/dev/null 2>&1 || true

in_ns node --import tsx test/containers/check.ts --build-seconds "$build_s"
