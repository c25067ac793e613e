#!/usr/bin/env bash
# Sets up a machine for `npm test`: npm, the Debian packages the tests use (Docker engine,
# docker-compose, nginx, haproxy, wrk, prometheus, keepalived, nftables), a running dockerd, the
# project's node_modules (npm ci; Node 24 comes with them as the dev dependency `node`) and the local
# images. Run as `npm run setup` or `bash scripts/setup.sh`; `.ci/run` does the same, then
# checks and tests. Safe to run again: every step skips what is already there.
#
# Environment:
#   SLUICE_DOCKERD_LOG   dockerd's log when this script starts it (default /tmp/sluice-dockerd.log)
#   NGINX_IMAGE          the backend image the tests use (default sluice-local/nginx:1.22)
#
# `source scripts/setup.sh` defines the functions without running anything.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERD_LOG=${SLUICE_DOCKERD_LOG:-/tmp/sluice-dockerd.log}

section() {
  printf '\n==== %s ====\n' "$*"
}

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

apt_updated=0
apt_install() {
  if [[ $apt_updated == 0 ]]; then
    as_root apt-get update -q
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# npm, with whatever Node the machine has: it only has to run npm ci, which brings Node 24.
ensure_npm() {
  section "npm"
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: installing Debian's nodejs and npm"
    apt_install nodejs npm
  fi
  echo "npm $(npm --version) on node $(node --version)"
  # The machine image sets nodedir (the system Node's headers, for node-gyp) in the user npmrc.
  # Those headers are not Node 24's, and npm 11 warns about the key on every command: drop it.
  # Nothing here needs a native build (package.json's allowScripts denies the optional ones).
  local userconfig
  userconfig=$(npm config get userconfig 2>/dev/null)
  if [[ -f $userconfig ]] && grep -q '^nodedir=' "$userconfig"; then
    echo "removing nodedir=$(sed -n 's/^nodedir=//p' "$userconfig") from $userconfig"
    sed -i '/^nodedir=/d' "$userconfig"
  fi
}

ensure_packages() {
  section "Debian packages (docker.io docker-compose nginx haproxy wrk prometheus keepalived nftables)"
  local missing=() pkg cmd
  # package:command that shows it is installed (the machine may ship a docker CLI without an engine)
  for pair in docker.io:dockerd docker-compose:docker-compose nginx:nginx haproxy:haproxy wrk:wrk prometheus:promtool \
    keepalived:keepalived nftables:nft; do
    pkg=${pair%%:*}
    cmd=${pair#*:}
    if command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]]; then
      echo "$pkg: present ($cmd)"
    else
      missing+=("$pkg")
    fi
  done
  # prometheus is wanted for its binaries (promtool for the rule tests, both for the local
  # Prometheus image): not its recommended exporters nor a running service (port 9090). (The
  # node exporter would not be in Sluice's way: the admin port is 8099.)
  # keepalived and nftables are wanted for their binaries only (the local keepalived image of the
  # VRRP pair of docker-compose.ha.yml), not keepalived's recommended ipvsadm.
  local others=() bare=() want_prometheus=0
  for pkg in "${missing[@]}"; do
    case $pkg in
      prometheus) want_prometheus=1 ;;
      keepalived | nftables) bare+=("$pkg") ;;
      *) others+=("$pkg") ;;
    esac
  done
  if ((${#others[@]})); then
    echo "installing: ${others[*]}"
    apt_install "${others[@]}"
  fi
  if ((${#bare[@]})); then
    echo "installing: ${bare[*]} (without recommends)"
    apt_install --no-install-recommends "${bare[@]}"
  fi
  if ((want_prometheus)); then
    echo "installing: prometheus (without recommends)"
    apt_install --no-install-recommends prometheus
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
      as_root systemctl disable --now prometheus || true
    fi
  fi
}

ensure_docker() {
  section "Docker engine"
  if ! docker info >/dev/null 2>&1; then
    if pgrep -x dockerd >/dev/null 2>&1; then
      echo "dockerd is running but does not answer yet; waiting"
    else
      echo "starting dockerd (log: $DOCKERD_LOG)"
      as_root bash -c "nohup setsid dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &"
    fi
    local waited=0
    until docker info >/dev/null 2>&1; do
      if ((waited >= 60)); then
        echo "docker does not answer after 60 s; the end of $DOCKERD_LOG:" >&2
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        exit 1
      fi
      sleep 1
      waited=$((waited + 1))
    done
    echo "dockerd answered after ${waited} s"
  fi
  # A client newer than the engine negotiates down by itself; an old client pinned too high does not.
  local err
  if ! err=$(docker version 2>&1 >/dev/null) && [[ $err =~ Maximum\ supported\ API\ version\ is\ ([0-9.]+) ]]; then
    export DOCKER_API_VERSION=${BASH_REMATCH[1]}
    echo "DOCKER_API_VERSION=$DOCKER_API_VERSION"
  fi
  docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}), engine {{.Server.Version}} (API {{.Server.APIVersion}})'
  docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /' || true
}

# The lock must be exactly what npm makes of package.json with the registry as it is now: a lock
# written while the registry lacked some platform builds (biome's, in November) makes npm ci fail
# on every fresh machine.
check_lock() {
  section "package-lock.json in sync"
  local saved
  saved=$(mktemp "${TMPDIR:-/tmp}/sluice-lock.XXXXXX")
  cp "$ROOT/package-lock.json" "$saved"
  (cd "$ROOT" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund --loglevel=error)
  if ! cmp -s "$saved" "$ROOT/package-lock.json"; then
    diff -u "$saved" "$ROOT/package-lock.json" | head -n 40 || true
    cp "$saved" "$ROOT/package-lock.json"
    rm -f "$saved"
    echo "package-lock.json is out of date (the diff above is what npm would change)." >&2
    echo "Fix: run 'npm install' and commit package-lock.json." >&2
    return 1
  fi
  rm -f "$saved"
  echo "package-lock.json matches package.json and the registry"
}

# node_modules from the lock (Node 24 among them); node_modules/.bin then goes first on PATH, so
# the rest of the script (and the image builder) runs on Node 24.
install_deps() {
  section "npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund 2>&1 | { grep -v '^npm warn Unknown user config' || true; })
  export PATH="$ROOT/node_modules/.bin:$PATH"
  hash -r
  echo "node $(node --version) at $(command -v node)"
}

build_images() {
  section "Local images"
  bash "$ROOT/scripts/build-images.sh"
  echo "NGINX_IMAGE=${NGINX_IMAGE:-sluice-local/nginx:1.22}"
}

# Node 24 from npm trusts only its bundled CAs; a machine whose registry traffic passes a TLS
# proxy with its own CA lists that CA in the system bundle, which Debian's Node and curl read.
trust_system_cas() {
  local bundle=/etc/ssl/certs/ca-certificates.crt
  if [[ -z ${NODE_EXTRA_CA_CERTS:-} && -f $bundle ]]; then
    export NODE_EXTRA_CA_CERTS=$bundle
  fi
}

setup() {
  trust_system_cas
  export NGINX_IMAGE=${NGINX_IMAGE:-sluice-local/nginx:1.22}
  export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
  ensure_npm
  ensure_packages
  ensure_docker
  install_deps
  build_images
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  setup
  section "Ready"
  echo "npm test runs every suite now (dockerd keeps running in the background)."
fi
