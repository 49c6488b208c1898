#!/usr/bin/env bash
# Installs what the tests need beyond Rust: the OpenSSH and Dropbear servers from Debian packages,
# Chromium and tshark (to check the HTML reports and the packet captures), OpenLDAP (the fleet
# test's directory), the schema validators of the CI recipes,
# the unprivileged `sshspec` user the process targets log in as (each run sets it a fresh random
# password; it never has one otherwise), and the container targets' images (scripts/build-images.sh,
# offline: debootstrap, then docker build). Idempotent: a second run changes nothing and takes
# seconds.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: must run as root (apt-get, useradd)" >&2
  exit 1
fi

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/ssh-keygen ] || need+=(openssh-client)
[ -x /usr/sbin/dropbear ] || need+=(dropbear-bin)
command -v chpasswd >/dev/null || need+=(passwd)
command -v debootstrap >/dev/null || need+=(debootstrap)
# The report tests render the HTML reports in headless Chromium and decrypt --capture pcaps with tshark.
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
command -v tshark >/dev/null || need+=(tshark)
# The fleet test keeps host keys in a real OpenLDAP directory; ssh-keyscan reads them from the servers.
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null || need+=(ldap-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The CI recipes in containers/sshspec/recipes/ are checked against the schemas their systems publish, offline:
# check-jsonschema carries GitHub's and GitLab's, kubernetes-validate Kubernetes' (pinned versions).
validators=/opt/sshspec-validators
if [ ! -x $validators/bin/check-jsonschema ] || [ ! -x $validators/bin/kubernetes-validate ]; then
  echo "install-test-deps: installing check-jsonschema and kubernetes-validate into $validators"
  python3 -m venv $validators
  $validators/bin/pip install -q check-jsonschema==0.39.0 kubernetes-validate==1.37.0
fi

if ! getent passwd sshspec >/dev/null; then
  echo "install-test-deps: creating user sshspec"
  useradd --create-home --shell /bin/sh sshspec
fi
passwd -l sshspec >/dev/null 2>&1 || true
mkdir -p /run/sshd

echo "install-test-deps: $(/usr/sbin/sshd -V 2>&1 | head -1); $(/usr/sbin/dropbear -V 2>&1 | head -1)"

# The third-party servers tests/thirdparty.rs runs as remote targets: Paramiko, AsyncSSH, Erlang/OTP ssh.
bash "$(dirname "$0")/install-thirdparty.sh"

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  start=$SECONDS
  bash "$(dirname "$0")/build-images.sh"
  echo "install-test-deps: container images ready in $((SECONDS - start)) s"
else
  # The container trials then skip with this reason outside CI, and fail in CI.
  echo "install-test-deps: no reachable Docker engine: container images not built" >&2
fi
