#!/usr/bin/python3
"""A thin SSH server on AsyncSSH's server API (asyncssh.create_server + asyncssh.SSHServer).

Usage: asyncssh_server.py PORT

Listens on 127.0.0.1:PORT (or on $SSHSPEC_LISTEN:PORT: 0.0.0.0 inside a target image). Credentials come from the environment: SSHSPEC_USER (required),
SSHSPEC_PASSWORD (password and keyboard-interactive auth; unset disables both) and
SSHSPEC_AUTHORIZED_KEYS (an authorized_keys file for publickey auth; optional). Fresh ed25519,
ECDSA P-256 and RSA 3072 host keys are generated with asyncssh.generate_private_key into a temp
dir at start. Prints `READY <port>` on stdout once listening; logs to stderr; runs until
SIGTERM/SIGINT, then kills its children and removes its temp dir.

Session channels (process_factory, binary streams): `exec` runs `/bin/sh -c COMMAND`, `shell` runs
`/bin/sh`, with stdin, stdout and stderr (as extended data) copied by one task each through
AsyncSSH's stream API; a process killed by a signal is reported with exit-signal
(SSHServerProcess.exit_with_signal). AsyncSSH raises a client's "signal" request from the stdin
read: it is sent on to the command's process group; break and window-change are ignored. `sftp`
is AsyncSSH's own SFTP server (sftp_factory=True); other subsystems are accepted by AsyncSSH and
end at once with exit-status 1. pty-req is refused (allow_pty=False): the commands run on pipes,
not a terminal.
"""

import warnings

warnings.filterwarnings("ignore", message=".* has been deprecated")  # Blowfish/CAST5/SEED notices

import asyncio  # noqa: E402
import hmac  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import asyncssh  # noqa: E402

log = logging.getLogger("asyncssh_server")

USER = os.environ.get("SSHSPEC_USER", "")
PASSWORD = os.environ.get("SSHSPEC_PASSWORD")
AUTHORIZED_KEYS = os.environ.get("SSHSPEC_AUTHORIZED_KEYS")
LISTEN = os.environ.get("SSHSPEC_LISTEN") or "127.0.0.1"


def load_authorized_keys():
    """The authorized keys, or None when there are none: asyncssh refuses a file without a key
    ("No valid entries found") and would drop every connection at its first auth request. Read
    at each login, as the file was before."""
    if not AUTHORIZED_KEYS:
        return None
    try:
        with open(AUTHORIZED_KEYS) as f:
            text = f.read()
    except OSError:
        return None
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        return None
    return asyncssh.import_authorized_keys(text)

children = set()


class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self.conn = conn
        log.info("connection from %s", conn.get_extra_info("peername"))

    def connection_lost(self, exc):
        log.info("connection closed: %s", exc or "normally")

    def begin_auth(self, username):
        keys = load_authorized_keys() if username == USER else None
        if keys is not None:
            self.conn.set_authorized_keys(keys)
        return True

    def public_key_auth_supported(self):
        return load_authorized_keys() is not None

    def password_auth_supported(self):
        return PASSWORD is not None

    def validate_password(self, username, password):
        ok = (
            PASSWORD is not None
            and username == USER
            and hmac.compare_digest(password.encode("utf-8", "surrogateescape"), PASSWORD.encode())
        )
        log.info("password for %r: %s", username, "accepted" if ok else "rejected")
        return ok

    def kbdint_auth_supported(self):
        return PASSWORD is not None

    def get_kbdint_challenge(self, username, lang, submethods):
        return "", "", "", (("Password: ", False),)

    def validate_kbdint_response(self, username, responses):
        return len(responses) == 1 and self.validate_password(username, responses[0])


async def copy(reader, writer, drain):
    while True:
        data = await reader.read(65536)
        if not data:
            return
        writer.write(data)
        await drain()


async def copy_out(proc, reader, writer):
    """Copies the process's stdout or stderr to the channel until EOF; if the channel closes first,
    hangs up the process (SIGHUP to its process group) and discards the rest."""
    try:
        await copy(reader, writer, writer.drain)
    except (asyncssh.Error, OSError) as e:
        log.info("channel closed early (%s): SIGHUP to the process", e)
        try:
            os.killpg(proc.pid, signal.SIGHUP)
        except OSError:
            pass
        while await reader.read(65536):
            pass


async def handle_process(process):
    if process.subsystem:
        log.info("subsystem %r: not supported", process.subsystem)
        process.stderr.write(f"subsystem {process.subsystem} is not supported\n".encode())
        process.exit(1)
        return
    argv = ["/bin/sh", "-c", process.command] if process.command is not None else ["/bin/sh"]
    log.info("run %r", argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        log.warning("cannot start %r: %s", argv, e)
        process.exit(127)
        return
    children.add(proc)

    async def feed_stdin():
        writing = True
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.SignalReceived as e:
                # A "signal" request: AsyncSSH raises it from the read; pass it on to the command's
                # process group (as a terminal would), since `sh -c` may have forked the command.
                sig = signal.Signals.__members__.get("SIG" + e.signal)
                log.info("signal %r: %s", e.signal, "sent to the command" if sig else "unknown, ignored")
                if sig is not None:
                    try:
                        os.killpg(proc.pid, sig)
                    except OSError:
                        pass
                continue
            except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged) as e:
                log.info("ignored: %r", e)
                continue
            if not data:
                break
            if writing:
                try:
                    proc.stdin.write(data)
                    await proc.stdin.drain()
                except OSError:
                    writing = False  # the process stopped reading: discard the rest
        proc.stdin.close()

    stdin_task = asyncio.ensure_future(feed_stdin())
    await asyncio.gather(copy_out(proc, proc.stdout, process.stdout), copy_out(proc, proc.stderr, process.stderr))
    code = await proc.wait()
    children.discard(proc)
    stdin_task.cancel()
    log.info("%r exited with %d", argv, code)
    try:
        process.stdout.write_eof()
        if code < 0:
            process.exit_with_signal(signal.Signals(-code).name[3:])
        else:
            process.exit(code)
    except (asyncssh.Error, OSError) as e:
        log.info("channel already closed: %s", e)


async def serve(port):
    tmp = tempfile.mkdtemp(prefix="sshspec-asyncssh.")
    try:
        paths = []
        for name, alg, opts in (
            ("ed25519", "ssh-ed25519", {}),
            ("ecdsa", "ecdsa-sha2-nistp256", {}),
            ("rsa", "ssh-rsa", {"key_size": 3072}),
        ):
            path = os.path.join(tmp, f"ssh_host_{name}_key")
            asyncssh.generate_private_key(alg, **opts).write_private_key(path)
            paths.append(path)
        server = await asyncssh.create_server(
            Server,
            LISTEN,
            port,
            server_host_keys=paths,
            process_factory=handle_process,
            encoding=None,
            allow_pty=False,
            sftp_factory=True,
            reuse_address=True,  # a restart on the same port need not wait out TIME_WAIT
        )
        log.info("asyncssh %s listening on %s:%d", asyncssh.__version__, LISTEN, port)
        print(f"READY {port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()
    finally:
        for proc in list(children):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("stopped")


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: asyncssh_server.py PORT", file=sys.stderr)
        return 2
    if not USER:
        print("asyncssh_server: SSHSPEC_USER is not set", file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    asyncio.run(serve(int(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
