#!/usr/bin/env bash
# Builds the container targets' images with no registry: each Debian suite's base image from
# Debian packages (debootstrap, imported into Docker as sshspec-base:SUITE), then each target image
# from its containers/<target>/Dockerfile (tagged sshspec/<target>). An image whose inputs have
# not changed (its sshspec.digest label matches) is kept, so a second run takes seconds.
#
# Usage: scripts/build-images.sh [TARGET...]     (default: every folder with a Dockerfile)
# Env:   SSHSPEC_DEBIAN_MIRROR   the Debian mirror (default: the one apt uses here)
#        SSHSPEC_RUSSH_BIN       a built sshspec-russh-server to put in the russh image (default:
#                                cargo build -p sshspec-russh-target, the test profile's binary)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ctx=$root/containers
# The packages every base image holds, so target images build without network; bookworm's also
# holds OpenLDAP, for the OpenSSH image's directory-keys variant.
packages=openssh-server,dropbear-bin,tinysshd,ucspi-tcp
suite_packages() { if [ "$1" = bookworm ]; then echo "$packages,slapd,ldap-utils"; else echo "$packages"; fi; }
mirror=${SSHSPEC_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}

say() { echo "build-images: $*" >&2; }
die() { say "$*"; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running? are you in the docker group?)"

label() { docker image inspect -f "{{index .Config.Labels \"sshspec.digest\"}}" "$1" 2>/dev/null || true; }
digest() { sha256sum | cut -c1-16; }

declare -A base_checked   # suites whose base image this run has already checked or built

base_image() {
  local suite=$1 tag=sshspec-base:$1 want
  [ -n "${base_checked[$suite]:-}" ] && return
  base_checked[$suite]=1
  local pkgs
  pkgs=$(suite_packages "$suite")
  want=$(printf 'base %s %s v1\n' "$suite" "$pkgs" | digest)
  if [ "$(label "$tag")" = "$want" ]; then
    say "$tag is current"
    return
  fi
  if ! command -v debootstrap >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "debootstrap is missing; install it (apt-get install debootstrap) or run as root"
    say "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root to build $tag"
  local rootfs start=$SECONDS
  rootfs=$(mktemp -d /var/tmp/sshspec-rootfs-"$suite".XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs' '$rootfs.log'" EXIT
  say "debootstrap $suite from $mirror (about a minute and a half)"
  if ! debootstrap --variant=minbase --include="$pkgs" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2
    rm -f "$rootfs.log"
    die "debootstrap $suite failed"
  fi
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import -c "LABEL sshspec.digest=$want" -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
  rm -rf "$rootfs"
  say "$tag imported in $((SECONDS - start)) s"
}

russh_binary() {
  local out=$ctx/russh/bin/sshspec-russh-server bin=${SSHSPEC_RUSSH_BIN:-}
  if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p sshspec-russh-target --bin sshspec-russh-server)
    bin=$root/target/debug/sshspec-russh-server
  fi
  mkdir -p "$ctx/russh/bin"
  cmp -s "$bin" "$out" 2>/dev/null || cp "$bin" "$out"
}

target_image() {
  local name=$1 file=$ctx/$1/Dockerfile suite want tag=sshspec/$1
  [ -f "$file" ] || die "no target image $name (no $file)"
  suite=$(sed -n 's/^ARG BASE=debian:\([a-z]*\)-slim$/\1/p' "$file")
  [ -n "$suite" ] || die "$file: no 'ARG BASE=debian:<suite>-slim' line"
  base_image "$suite"
  local inputs=("$file" "$ctx/common/sshspec-serve")
  if [ "$name" = russh ]; then
    russh_binary
    inputs+=("$ctx/russh/bin/sshspec-russh-server")
  fi
  want=$( (cat "${inputs[@]}"; docker image inspect -f '{{.Id}}' "sshspec-base:$suite") | digest)
  if [ "$(label "$tag")" = "$want" ]; then
    say "$tag is current"
    return
  fi
  local start=$SECONDS
  # The classic builder: it needs no buildx plugin and honours the local base image as is.
  local out
  if ! out=$(DOCKER_BUILDKIT=0 docker build --build-arg "BASE=sshspec-base:$suite" --label "sshspec.digest=$want" \
      -t "$tag" -f "$file" "$ctx" 2>&1); then
    echo "$out" | tail -n 30 >&2
    die "docker build of $tag failed"
  fi
  say "$tag built in $((SECONDS - start)) s"
}

if [ $# -eq 0 ]; then
  set -- $(cd "$ctx" && for d in */Dockerfile; do echo "${d%/Dockerfile}"; done)
fi
for t in "$@"; do
  target_image "$t"
done
