#!/usr/bin/python3
"""A thin SSH server on Paramiko's server API (paramiko.ServerInterface + paramiko.Transport).

Usage: paramiko_server.py PORT

Listens on 127.0.0.1:PORT (or on $SSHSPEC_LISTEN:PORT: 0.0.0.0 inside a target image). Credentials come from the environment: SSHSPEC_USER (required),
SSHSPEC_PASSWORD (password and keyboard-interactive auth; unset disables both) and
SSHSPEC_AUTHORIZED_KEYS (an authorized_keys file for publickey auth; optional). Fresh ed25519,
ECDSA P-256 and RSA 3072 host keys are generated into a temp dir at start. Prints `READY <port>`
on stdout once listening; logs to stderr; runs until SIGTERM/SIGINT, then kills its children and
removes its temp dir.

Session channels: `exec` runs `/bin/sh -c COMMAND`, `shell` runs `/bin/sh`, both with stdin,
stdout and stderr (as extended data) piped by one thread each. pty-req, env, subsystems and the
rest are refused (Paramiko's defaults). Paramiko has no API to send exit-signal, so a process
killed by a signal is reported as exit-status 128+N, the shell convention.

SSHSPEC_DEVIATE makes it a deviant fixture, so scenarios are seen to FAIL against a real server
that breaks their rule: `ignore-window` sends channel data in chunks of up to 64 KiB whatever the
client's window and maximum packet size (RFC 4254 §5.2); `data-during-rekey` starts a rekey of its
own every 64 KiB and keeps sending channel data between its KEXINIT and NEWKEYS (RFC 4253 §7.1);
`strict-kex-without-reset` lists kex-strict-s-v00@openssh.com but never resets its sequence numbers
(OpenSSH PROTOCOL §1.10).
"""

import base64
import binascii
import hmac
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

log = logging.getLogger("paramiko_server")

USER = os.environ.get("SSHSPEC_USER", "")
PASSWORD = os.environ.get("SSHSPEC_PASSWORD")
AUTHORIZED_KEYS = os.environ.get("SSHSPEC_AUTHORIZED_KEYS")
LISTEN = os.environ.get("SSHSPEC_LISTEN") or "127.0.0.1"

children = set()
children_lock = threading.Lock()


def ignore_window(self, size):
    """Paramiko's Channel._wait_for_send_window without the window or packet-size limits."""
    if self.closed or self.eof_sent:
        return 0
    self.out_window_size = max(0, self.out_window_size - size)
    return size


def send_during_kex(self, data):
    """Paramiko's Transport._send_user_message without the wait for the key exchange to end."""
    if self.active:
        self._send_message(data)


DEVIATE = os.environ.get("SSHSPEC_DEVIATE")
if DEVIATE == "ignore-window":
    paramiko.Channel._wait_for_send_window = ignore_window
elif DEVIATE == "data-during-rekey":
    paramiko.packet.Packetizer.REKEY_BYTES = 64 * 1024
    paramiko.Transport._send_user_message = send_during_kex
elif DEVIATE == "strict-kex-without-reset":
    # A name Paramiko must know to list; never agreed, since no client lists the server's marker.
    paramiko.Transport._kex_info = dict(paramiko.Transport._kex_info, **{"kex-strict-s-v00@openssh.com": None})
    paramiko.Transport._preferred_kex = tuple(paramiko.Transport._preferred_kex) + ("kex-strict-s-v00@openssh.com",)
elif DEVIATE:
    sys.exit(
        "unknown SSHSPEC_DEVIATE value %r; known: ignore-window, data-during-rekey, strict-kex-without-reset" % DEVIATE
    )


def load_authorized_keys(path):
    """The key blobs of an authorized_keys file (options before the key type are skipped)."""
    blobs = set()
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            for i in range(len(fields) - 1):
                try:
                    blob = base64.b64decode(fields[i + 1], validate=True)
                except (binascii.Error, ValueError):
                    continue
                if len(blob) > 4 and blob[4 : 4 + int.from_bytes(blob[:4], "big")] == fields[i].encode():
                    blobs.add(blob)
                    break
    return blobs


def generate_host_keys(directory):
    """Writes fresh host keys into `directory` and loads them with Paramiko."""
    keys = []
    path = os.path.join(directory, "ssh_host_ed25519_key")
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(pem)
    keys.append(paramiko.Ed25519Key(filename=path))
    for name, make, cls in (
        ("ecdsa", lambda: paramiko.ECDSAKey.generate(), paramiko.ECDSAKey),
        ("rsa", lambda: paramiko.RSAKey.generate(3072), paramiko.RSAKey),
    ):
        path = os.path.join(directory, f"ssh_host_{name}_key")
        make().write_private_key_file(path)
        keys.append(cls(filename=path))
    return keys


class Server(paramiko.ServerInterface):
    def __init__(self, authorized):
        self.authorized = authorized

    def get_allowed_auths(self, username):
        methods = []
        if self.authorized is not None:
            methods.append("publickey")
        if PASSWORD is not None:
            methods += ["password", "keyboard-interactive"]
        return ",".join(methods)

    def _password_ok(self, username, password):
        return (
            PASSWORD is not None
            and username == USER
            and hmac.compare_digest(password.encode("utf-8", "surrogateescape"), PASSWORD.encode())
        )

    def check_auth_password(self, username, password):
        ok = self._password_ok(username, password)
        log.info("password auth for %r: %s", username, "accepted" if ok else "rejected")
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        ok = self.authorized is not None and username == USER and key.asbytes() in self.authorized
        log.info("publickey %s for %r: %s", key.get_name(), username, "accepted" if ok else "rejected")
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_interactive(self, username, submethods):
        if PASSWORD is None:
            return paramiko.AUTH_FAILED
        self._kbd_user = username
        return paramiko.InteractiveQuery("", "", ("Password: ", False))

    def check_auth_interactive_response(self, responses):
        ok = len(responses) == 1 and self._password_ok(self._kbd_user, responses[0])
        log.info("keyboard-interactive auth for %r: %s", self._kbd_user, "accepted" if ok else "rejected")
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_UNKNOWN_CHANNEL_TYPE

    def check_channel_exec_request(self, channel, command):
        command = command.decode("utf-8", "surrogateescape") if isinstance(command, bytes) else command
        log.info("exec %r", command)
        start_after_reply(channel, ["/bin/sh", "-c", command])
        return True

    def check_channel_shell_request(self, channel):
        log.info("shell")
        start_after_reply(channel, ["/bin/sh"])
        return True


def start_after_reply(channel, argv):
    """Paramiko sends CHANNEL_SUCCESS only after this callback returns, from its own thread; a
    command started at once could have its output or EOF on the wire first (seen with `true`).
    So the command starts a moment later, as an application would after the request completes."""
    threading.Timer(0.2, run, args=(channel, argv)).start()


def run(chan, argv):
    """Runs argv with its stdio piped to the channel, then sends EOF, exit-status and close."""
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as e:
        log.warning("cannot start %r: %s", argv, e)
        chan.send_exit_status(127)
        chan.close()
        return
    with children_lock:
        children.add(proc)

    def pump_in():
        writing = True
        while True:
            data = chan.recv(65536)
            if not data:
                break
            if writing:
                try:
                    proc.stdin.write(data)
                    proc.stdin.flush()
                except (BrokenPipeError, ValueError, OSError):
                    writing = False  # the process stopped reading: discard the rest
        try:
            proc.stdin.close()
        except OSError:
            pass

    def pump_out(pipe, send):
        fd = pipe.fileno()
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                send(data)
        except OSError:
            pass  # the channel closed: closing our end gives the process SIGPIPE
        finally:
            pipe.close()

    threading.Thread(target=pump_in, daemon=True).start()
    outs = [
        threading.Thread(target=pump_out, args=(proc.stdout, chan.sendall), daemon=True),
        threading.Thread(target=pump_out, args=(proc.stderr, chan.sendall_stderr), daemon=True),
    ]
    for t in outs:
        t.start()
    for t in outs:
        t.join()
    code = proc.wait()
    with children_lock:
        children.discard(proc)
    status = code if code >= 0 else 128 - code
    log.info("%r exited with %d (exit-status %d)", argv, code, status)
    try:
        chan.shutdown_write()
        chan.send_exit_status(status)
        chan.close()
    except Exception as e:  # the connection is gone
        log.info("channel already closed: %s", e)


def handle(sock, addr, host_keys, authorized):
    try:
        t = paramiko.Transport(sock)
        for k in host_keys:
            t.add_server_key(k)
        t.start_server(server=Server(authorized))
    except Exception as e:
        log.info("connection from %s failed: %s", addr, e)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: paramiko_server.py PORT", file=sys.stderr)
        return 2
    if not USER:
        print("paramiko_server: SSHSPEC_USER is not set", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("paramiko").setLevel(logging.WARNING)

    tmp = tempfile.mkdtemp(prefix="sshspec-paramiko.")

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        host_keys = generate_host_keys(tmp)
        authorized = load_authorized_keys(AUTHORIZED_KEYS) if AUTHORIZED_KEYS else None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LISTEN, port))
        listener.listen(128)
        log.info("paramiko %s listening on %s:%d", paramiko.__version__, LISTEN, port)
        print(f"READY {port}", flush=True)
        while True:
            sock, addr = listener.accept()
            threading.Thread(target=handle, args=(sock, addr, host_keys, authorized), daemon=True).start()
    finally:
        with children_lock:
            for proc in children:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
