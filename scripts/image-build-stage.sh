#!/usr/bin/env bash
# The image's build stage, as one script: the Dockerfile runs it inside the build
# container, and CI runs it on the host (scripts/image-build-stage-check.sh) where no
# container engine is used. Input: a source tree whose `npm ci` (dev dependencies
# included) has been done. Output, in OUT:
#   OUT/app      package.json, dist/src (compiled, no tests) and production-only node_modules
#   OUT/rootfs   node, the shared libraries node and the native addons load,
#                p11-kit-client.so (Debian's p11-kit-modules) at
#                /usr/lib/keyhaven/pkcs11/p11-kit-client.so with the libraries it links (the
#                PKCS#11 module `--root-key pkcs11` loads to reach the chart's p11-kit
#                server sidecar, docs/hsm.md), /etc/passwd, /etc/group, /etc/nsswitch.conf
#                and /tmp: the whole runtime file system apart from the app and the data
#                folder (no shell, no package manager)
#   OUT/state    keyhaven/, the default data folder, copied to /var/lib/ owned by uid 10001
# Usage: scripts/image-build-stage.sh SRC OUT [NODE_BINARY [P11_KIT_CLIENT]]
#   P11_KIT_CLIENT defaults to Debian's path for this machine's architecture.
set -euo pipefail

src=$(cd "${1:?source tree}" && pwd)
out=${2:?output folder}
node_bin=${3:-$(command -v node)}
p11_kit_client=${4:-/usr/lib/$(uname -m)-linux-gnu/pkcs11/p11-kit-client.so}
[ -f "$p11_kit_client" ] || {
  echo "$p11_kit_client not found: install Debian's p11-kit-modules" >&2
  exit 1
}
uid=10001

rm -rf "$out"
mkdir -p "$out/app" "$out/rootfs"
out=$(cd "$out" && pwd)

cd "$src"
# 1. Compile with the dev dependencies, then drop them.
npm run build --silent
npm prune --omit=dev --no-audit --no-fund

# 2. The app: compiled sources and production dependencies only.
cp package.json "$out/app/"
mkdir -p "$out/app/dist"
cp -R dist/src "$out/app/dist/src"
find "$out/app/dist" -name '*.test.js' -delete -o -name '*.test.js.map' -delete
cp -R node_modules "$out/app/node_modules"
# Native addon build leftovers are not needed at run time: keep only the .node file.
sqlite="$out/app/node_modules/better-sqlite3"
if [ -d "$sqlite" ]; then
  rm -rf "$sqlite/deps" "$sqlite/src" "$sqlite/build/Release/obj" "$sqlite/build/Release/obj.target" \
    "$sqlite/build/Release/.deps" "$sqlite/build/Release/test_extension.node" "$sqlite/build/deps"
  find "$sqlite/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$sqlite/build/Release" -mindepth 1 -maxdepth 1 ! -name '*.node' -exec rm -rf {} +
fi
# The program must load with production dependencies alone.
"$node_bin" "$out/app/dist/src/main.js" version

# 3. The runtime file system: node and exactly the libraries it and the addons link.
root="$out/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/var/lib" "$out/state/keyhaven"
chmod 0700 "$out/state/keyhaven"
chmod 1777 "$root/tmp"
cp "$node_bin" "$root/usr/local/bin/node"
copy_libs() {
  ldd "$1" | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
copy_libs "$node_bin"
find "$out/app/node_modules" -name '*.node' -type f | while read -r addon; do copy_libs "$addon"; done
# The PKCS#11 client of the p11-kit server sidecar (it links libffi and libc only). The
# vendor's HSM module stays in the sidecar image.
mkdir -p "$root/usr/lib/keyhaven/pkcs11"
cp -L "$p11_kit_client" "$root/usr/lib/keyhaven/pkcs11/p11-kit-client.so"
copy_libs "$p11_kit_client"
printf 'root:x:0:0:root:/root:/sbin/nologin\nkeyhaven:x:%s:%s:keyhaven:/var/lib/keyhaven:/sbin/nologin\n' \
  "$uid" "$uid" >"$root/etc/passwd"
printf 'root:x:0:\nkeyhaven:x:%s:\n' "$uid" >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
echo "build stage done: $(du -sh "$out/app" | cut -f1) app, $(du -sh "$root" | cut -f1) runtime file system"
