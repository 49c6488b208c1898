#!/usr/bin/env bash
# Installs what the third-party SSH servers of containers/thirdparty/ need: Paramiko and AsyncSSH
# for Debian's /usr/bin/python3, and Erlang/OTP with its ssh application, all from Debian packages.
# Idempotent: packages already installed are left alone, so a second run changes nothing and takes
# well under a second.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-thirdparty: must run as root (apt-get)" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

need=()
for pkg in python3-paramiko python3-asyncssh erlang-base erlang-ssh erlang-public-key erlang-crypto; do
  installed "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "install-thirdparty: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Debian's python3 on purpose: a pyenv or venv python3 earlier on PATH lacks these packages.
echo "install-thirdparty: $(/usr/bin/python3 -W ignore -c 'import paramiko, asyncssh; print("paramiko", paramiko.__version__ + ";", "asyncssh", asyncssh.__version__)');" \
  "Erlang/OTP $(cat /usr/lib/erlang/releases/*/OTP_VERSION | head -1), $(basename /usr/lib/erlang/lib/ssh-*)"
