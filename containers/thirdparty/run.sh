#!/usr/bin/env bash
# Starts one of the third-party SSH servers of this folder on 127.0.0.1:PORT, in the foreground.
#
#   SSHSPEC_USER=u SSHSPEC_PASSWORD=p [SSHSPEC_AUTHORIZED_KEYS=file] containers/thirdparty/run.sh SERVER PORT
#
# SERVER is paramiko, asyncssh or erlang. The server prints `READY <port>` on stdout once it
# listens, logs to stderr, and runs until SIGTERM (this script execs it, so the signal reaches it).
# Needs the Debian packages of scripts/install-thirdparty.sh; Debian's /usr/bin/python3 is used on
# purpose (its dist-packages hold python3-paramiko and python3-asyncssh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 paramiko|asyncssh|erlang PORT" >&2
  exit 2
fi
server=$1 port=$2
if [ -z "${SSHSPEC_USER:-}" ]; then
  echo "run.sh: SSHSPEC_USER is not set" >&2
  exit 2
fi
# Commands, shells and SFTP start where a login would: the home directory.
cd "${HOME:-/}" 2>/dev/null || cd /

case $server in
  paramiko | asyncssh)
    if ! /usr/bin/python3 -c "import $server" 2>/dev/null; then
      echo "run.sh: python3-$server is not installed (scripts/install-thirdparty.sh)" >&2
      exit 3
    fi
    exec /usr/bin/python3 "$here/${server}_server.py" "$port"
    ;;
  erlang)
    if ! [ -x /usr/bin/escript ] || ! compgen -G '/usr/lib/erlang/lib/ssh-*' >/dev/null; then
      echo "run.sh: erlang-base or erlang-ssh is not installed (scripts/install-thirdparty.sh)" >&2
      exit 3
    fi
    exec /usr/bin/escript "$here/erlang_server.escript" "$port"
    ;;
  *)
    echo "run.sh: unknown server $server (paramiko, asyncssh or erlang)" >&2
    exit 2
    ;;
esac
