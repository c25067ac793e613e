#!/usr/bin/env bash
# Builds the local images that stand in for registry images on machines that cannot pull.
#
#   scripts/build-images.sh [--force]
#
# sluice-local/nginx:1.22  a FROM scratch image holding Debian's nginx (apt package `nginx`)
#                          laid out like the official nginx image, serving web/ on port 80.
#
# Each image carries a label with a hash of everything it is made from (this script, docker/nginx/,
# web/, the nginx binary, its libraries, mime.types). An image whose label matches is kept; any
# change rebuilds it. --force always rebuilds. Needs: docker (a running engine) and nginx (Debian).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX_LOCAL_IMAGE=sluice-local/nginx:1.22
LABEL=org.sluice.inputs
NGINX_BIN=/usr/sbin/nginx
MIME_TYPES=/etc/nginx/mime.types

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-images: unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

die() {
  echo "build-images: $*" >&2
  exit 1
}

command -v docker >/dev/null || die "docker is not installed (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "the docker engine does not answer (is dockerd running?)"
[[ -x $NGINX_BIN ]] || die "$NGINX_BIN is missing (apt-get install -y nginx)"
[[ -f $MIME_TYPES ]] || die "$MIME_TYPES is missing (apt-get install -y nginx)"

# The shared libraries nginx needs, and the dynamic loader, as absolute paths.
nginx_libs() {
  local out
  out=$(ldd "$NGINX_BIN") || die "ldd $NGINX_BIN failed"
  if grep -q 'not found' <<<"$out"; then
    die "ldd $NGINX_BIN: missing libraries:"$'\n'"$out"
  fi
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out" | sort -u
}

inputs_hash() {
  {
    # By content for this script: it may be called by a relative or an absolute path.
    sha256sum <"${BASH_SOURCE[0]}"
    sha256sum "$NGINX_BIN" "$MIME_TYPES"
    nginx_libs | xargs sha256sum
    (cd "$ROOT" && find docker/nginx web -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

build_nginx() {
  local hash ctx rootfs started lib out
  hash=$(inputs_hash)
  if [[ $force == 0 && $(image_label "$NGINX_LOCAL_IMAGE") == "$hash" ]]; then
    echo "build-images: $NGINX_LOCAL_IMAGE is up to date ($LABEL=$hash)"
    return
  fi
  started=$(date +%s%N)

  ctx=$(mktemp -d "${TMPDIR:-/tmp}/sluice-nginx-image.XXXXXX")
  # shellcheck disable=SC2064 # expand now: ctx is local
  trap "rm -rf '$ctx'" EXIT
  rootfs=$ctx/rootfs
  umask 022

  cp "$ROOT/docker/nginx/Dockerfile" "$ctx/Dockerfile"
  install -D -m 0755 "$NGINX_BIN" "$rootfs/usr/sbin/nginx"
  while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done < <(nginx_libs)

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

  # The engine (Debian's 20.10) has the legacy builder only; it warns that it is deprecated.
  out=$(DOCKER_BUILDKIT=0 docker build --label "$LABEL=$hash" -t "$NGINX_LOCAL_IMAGE" "$ctx" 2>&1) ||
    die "docker build failed:"$'\n'"$out"
  rm -rf "$ctx"
  trap - EXIT

  # Earlier builds of ours that lost their tag.
  docker image prune -f --filter "label=$LABEL" >/dev/null || true

  # A scratch image fails only at run time if a file is missing: let nginx check its config.
  docker run --rm "$NGINX_LOCAL_IMAGE" nginx -t -q ||
    die "$NGINX_LOCAL_IMAGE was built but 'nginx -t' fails in it"

  echo "build-images: built $NGINX_LOCAL_IMAGE ($LABEL=$hash) in $((($(date +%s%N) - started) / 1000000)) ms"
}

build_nginx
