# Sluice: the proxy on Node 24, run as a non-root user, configured by /etc/sluice/sluice.yaml.
#
#   docker build -t sluice .                       # a connected machine: official node image
#   docker run -v $PWD/deploy/sluice.yaml:/etc/sluice/sluice.yaml:ro -p 8080:8080 sluice
#   docker run -p 8080:8080 sluice demo --listen 0.0.0.0:8080 --admin 0.0.0.0:9100
#
# Two stages. `deps` runs `npm ci --omit=dev` in an image with npm (NODE_BUILD_IMAGE); the final
# image (NODE_IMAGE) holds node, the production node_modules and the sources, which Node runs
# directly (type stripping: no build step). Where no image can be pulled, scripts/build-images.sh
# builds this file with local stand-ins (no shell in them, hence exec-form instructions only):
#
#   docker build --build-arg NODE_IMAGE=sluice-local/node:24 \
#     --build-arg NODE_BUILD_IMAGE=sluice-local/node-build:24 -t sluice-local/sluice:dev .
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
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY web ./web
# The uid of `node` in the official image and the local stand-in; numeric, so that a runtime
# enforcing non-root (Kubernetes runAsNonRoot) can check it.
USER 1000:1000
# 8080: the proxy; 9100: the admin port (/metrics, /healthz, /readyz, /status). The config
# must listen on 0.0.0.0 for either to be reached from outside the container.
EXPOSE 8080 9100
# GET /healthz on the admin port with node itself (the image may have no shell, curl or wget).
# SLUICE_ADMIN (host:port, as for the CLI) moves it; a wildcard host is probed on loopback.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const m=/^\\[?(.*?)\\]?:(\\d+)$/.exec(process.env.SLUICE_ADMIN||'')||[,'127.0.0.1','9100'];const h=['','0.0.0.0','::'].includes(m[1])?'127.0.0.1':m[1];const s=require('node:net').connect(+m[2],h);let r='';s.setTimeout(2000,()=>process.exit(1));s.on('error',()=>process.exit(1));s.on('connect',()=>s.end('GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n'));s.on('data',d=>{r+=d});s.on('end',()=>process.exit(/^HTTP\\/1\\.[01] 200 /.test(r)?0:1))"]
# Exec form: node is PID 1 and receives SIGTERM itself; Sluice then drains (/readyz turns 503,
# in-flight requests finish) and exits. Keep timeouts.shutdown below the runtime's stop grace
# period (docker stop: 10 s unless --time / compose stop_grace_period says more).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/src/cli/main.ts"]
CMD ["--config", "/etc/sluice/sluice.yaml"]
