#!/usr/bin/env bash
# Builds the container targets' images with no registry: each Debian suite's base image from
# Debian packages (debootstrap, imported into Docker as sshspec-base:SUITE), then each target image
# from its containers/<target>/Dockerfile (tagged sshspec/<target>). An image whose inputs (the
# Dockerfile, every file it COPYs, its base) have not changed (its sshspec.digest label matches) is
# kept, so a second run takes seconds.
#
# The library targets (a library with a server program of ours, containers/thirdparty/) share one
# Dockerfile, containers/thirdparty/Dockerfile; their folder holds `image.args` instead (BASE, the
# Debian PACKAGES, the SERVER program). They build FROM sshspec-base:SUITE-libraries, one
# debootstrap per suite holding every such target's packages, so the servers' own images stay as
# small as before.
#
# Usage: scripts/build-images.sh [TARGET...]     (default: every folder with a Dockerfile)
# Env:   SSHSPEC_DEBIAN_MIRROR   the Debian mirror (default: the one apt uses here)
#        SSHSPEC_RUSSH_BIN       a built sshspec-russh-server to put in the russh image (default:
#                                cargo build -p sshspec-russh-target, the test profile's binary)
#        SSHSPEC_BIN             a built sshspec to put in the sshspec image (default: cargo build
#                                -p sshspec-cli, the test profile's binary)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ctx=$root/containers
# The packages every base image holds, so target images build without network; bookworm's also
# holds OpenLDAP, for the OpenSSH image's directory-keys variant.
packages=openssh-server,dropbear-bin,tinysshd,ucspi-tcp
suite_packages() {
  case $1 in
    bookworm) echo "$packages,slapd,ldap-utils" ;;
    *-libraries) library_packages "${1%-libraries}" ;;
    *) echo "$packages" ;;
  esac
}
# The union of the PACKAGES of every library target on SUITE, comma-separated.
library_packages() {
  local f
  for f in "$ctx"/*/image.args; do
    [ "$(suite_of "$f")" = "$1" ] || continue
    arg PACKAGES "$f"
  done | tr ' ' '\n' | sed '/^$/d' | sort -u | paste -sd, -
}
# The Debian suite of a Dockerfile (`ARG BASE=debian:SUITE-slim`) or of an image.args (`BASE=...`).
suite_of() { sed -n 's/^\(ARG \)\{0,1\}BASE=debian:\([a-z]*\)-slim$/\2/p' "$1"; }
# A NAME=value line of an image.args file.
arg() { sed -n "s/^$1=//p" "$2"; }
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
  local rootfs start=$SECONDS dist=${suite%-libraries}
  rootfs=$(mktemp -d /var/tmp/sshspec-rootfs-"$suite".XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs' '$rootfs.log'" EXIT
  say "debootstrap $suite from $mirror (a minute and a half; the libraries bases about four)"
  if ! debootstrap --variant=minbase --include="$pkgs" "$dist" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
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

# The sshspec image: the binary and the scenario catalogue it reads at run time.
sshspec_binary() {
  local out=$ctx/sshspec/bin/sshspec bin=${SSHSPEC_BIN:-}
  if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p sshspec-cli --bin sshspec)
    bin=$root/target/debug/sshspec
  fi
  mkdir -p "$ctx/sshspec/bin"
  cmp -s "$bin" "$out" 2>/dev/null || cp "$bin" "$out"
  rm -rf "$ctx/sshspec/scenarios"
  cp -r "$root/scenarios" "$ctx/sshspec/scenarios"
}

# The bytes of the inputs, folders included (their files in name order), for the digest.
content() {
  local i
  for i in "$@"; do
    if [ -d "$i" ]; then
      (cd "$i" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    else
      cat "$i"
    fi
  done
}

target_image() {
  local name=$1 dir=$ctx/$1 file suite want tag=sshspec/$1 build_args=() inputs=()
  if [ -f "$dir/Dockerfile" ]; then
    file=$dir/Dockerfile
    suite=$(suite_of "$file")
    [ -n "$suite" ] || die "$file: no 'ARG BASE=debian:<suite>-slim' line"
  elif [ -f "$dir/image.args" ]; then
    file=$ctx/thirdparty/Dockerfile
    suite=$(suite_of "$dir/image.args")
    [ -n "$suite" ] || die "$dir/image.args: no 'BASE=debian:<suite>-slim' line"
    suite=$suite-libraries
    build_args=(--build-arg "PACKAGES=$(arg PACKAGES "$dir/image.args")" --build-arg "SERVER=$(arg SERVER "$dir/image.args")")
    inputs+=("$dir/image.args")
  else
    die "no target image $name (no $dir/Dockerfile or $dir/image.args)"
  fi
  base_image "$suite"
  [ "$name" = russh ] && russh_binary
  [ "$name" = sshspec ] && sshspec_binary
  # Everything the image is made of: the Dockerfile and each file it copies from the context.
  inputs+=("$file")
  local src
  for src in $(sed -n 's/^COPY \(.*\) [^ ]*$/\1/p' "$file"); do
    [ -e "$ctx/$src" ] || die "$file copies $src, which is not in $ctx"
    inputs+=("$ctx/$src")
  done
  want=$( (content "${inputs[@]}"; docker image inspect -f '{{.Id}}' "sshspec-base:$suite") | digest)
  if [ "$(label "$tag")" = "$want" ]; then
    say "$tag is current"
    return
  fi
  local start=$SECONDS old
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  # The classic builder: it needs no buildx plugin and honours the local base image as is.
  local out
  if ! out=$(DOCKER_BUILDKIT=0 docker build --build-arg "BASE=sshspec-base:$suite" "${build_args[@]}" \
      --label "sshspec.digest=$want" -t "$tag" -f "$file" "$ctx" 2>&1); then
    echo "$out" | tail -n 30 >&2
    die "docker build of $tag failed"
  fi
  # The image this one replaces would linger untagged (hundreds of MB for a library target).
  [ -n "$old" ] && docker rmi "$old" >/dev/null 2>&1 || true
  say "$tag built in $((SECONDS - start)) s"
}

if [ $# -eq 0 ]; then
  set -- $(cd "$ctx" && for d in */Dockerfile */image.args; do
    [ "$d" = thirdparty/Dockerfile ] || echo "${d%/*}"
  done)
fi
for t in "$@"; do
  target_image "$t"
done
