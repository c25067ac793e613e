# Sluice: the proxy on Node 24, run as a non-root user, configured by /etc/sluice/sluice.yaml.
#
#   docker build -t sluice .                       # a connected machine: official node image
#   docker run -v $PWD/deploy/sluice.yaml:/etc/sluice/sluice.yaml:ro -p 8080:8080 sluice
#   docker run -p 8080:8080 -e SLUICE_ADMIN=0.0.0.0:8099 sluice demo --listen 0.0.0.0:8080
#
# Two stages. `deps` runs `npm ci --omit=dev` in an image with npm (NODE_BUILD_IMAGE); the final
# image (NODE_IMAGE) holds node, the production node_modules and the sources, which Node runs
# directly (type stripping: no build step). Where no image can be pulled, scripts/build-images.sh
# builds this file with local stand-ins (no shell in them, hence exec-form instructions only):
#
#   docker build --build-arg NODE_IMAGE=sluice-local/node:24 \
#     --build-arg NODE_BUILD_IMAGE=sluice-local/node-build:24 -t sluice-local/sluice:dev .
#
# SLUICE_REVISION (the git commit; scripts/build-images.sh passes it) is what `sluice --version`
# and sluice_build_info report, the image having no .git; it is also the OCI revision label.
#
# sluice-local/node-build:24 carries npm and an npm cache of exactly the locked production
# packages, and runs npm offline. The engine's legacy builder is enough (no BuildKit features).
ARG NODE_IMAGE=node:24-alpine
ARG NODE_BUILD_IMAGE=node:24-alpine

FROM ${NODE_BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci checks the lock against every dependency of package.json, dev ones included, and the
# lock made where the registry lacks some platform builds of biome's optional packages does not
# list them all: drop devDependencies first (the lock still pins every production package).
RUN ["npm", "pkg", "delete", "devDependencies"]
RUN ["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"]

FROM ${NODE_IMAGE}
ARG SLUICE_VERSION=unknown
ARG SLUICE_REVISION=unknown
LABEL org.opencontainers.image.title="Sluice" \
      org.opencontainers.image.description="An HTTP/1.1 reverse proxy and load balancer on raw TCP sockets, in TypeScript" \
      org.opencontainers.image.version="${SLUICE_VERSION}" \
      org.opencontainers.image.revision="${SLUICE_REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.documentation="README.md, docs/runbook.md"
ENV NODE_ENV=production \
    SLUICE_REVISION=${SLUICE_REVISION} \
    SLUICE_CONFIG=/etc/sluice/sluice.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY web ./web
# The uid of `node` in the official image and the local stand-in; numeric, so that a runtime
# enforcing non-root (Kubernetes runAsNonRoot) can check it.
USER 1000:1000
# Node's compile cache (bin/sluice.js), made now: every container starts with the sources already
# stripped of their types, so the stripper (a WebAssembly module, 30 MB of RSS) is never loaded.
# Same Node flags as the entrypoint (they are part of the cache's key); the command only loads
# the modules, the workers' included (serve without a config exits 2, which is expected here).
# Made as the user that runs Sluice: Node uses a cache only where it may also write it (another
# uid, or a read-only root file system, runs the same without it). NODE_COMPILE_CACHE is set for
# every node command of the image, the health check's included.
ENV NODE_COMPILE_CACHE=/tmp/sluice-compile-cache
RUN ["node", "--max-semi-space-size=8", "-e", "Promise.all(['/app/bin/sluice.js', '/app/src/cli/serve.ts', '/app/src/cluster/serve.ts', '/app/src/cluster/worker.ts'].map((m) => import(m))).then(() => { process.exitCode = 0; })"]
# 8080: the proxy; 8099: the admin port (/metrics, /healthz, /readyz, /status). The config
# must listen on 0.0.0.0 for either to be reached from outside the container.
EXPOSE 8080 8099
# `sluice healthcheck` asks /healthz on the admin port (exit 0 or 1): the address comes from
# SLUICE_ADMIN, else the config file (SLUICE_CONFIG), else the default; a wildcard host is asked
# on loopback. Exec form: the image may have no shell, curl or wget.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/src/cli/main.ts", "healthcheck"]
# One worker process per CPU the container may use (`workers: auto`, the cgroup quota
# included); the process started here supervises them and alone holds the admin port.
# Exec form: node is PID 1 and receives SIGTERM itself; Sluice then drains (/readyz turns 503,
# in-flight requests finish) and exits. Keep timeouts.shutdown below the runtime's stop grace
# period (docker stop: 10 s unless --time / compose stop_grace_period says more).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/bin/sluice.js"]
# serve reads SLUICE_CONFIG (/etc/sluice/sluice.yaml); `docker run IMAGE demo` runs the demo.
CMD ["serve"]
