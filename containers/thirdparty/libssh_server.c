/* A thin SSH server on libssh's documented server API (ssh_bind, server and channel callbacks,
 * ssh_event), one forked process per connection as in the library's own examples.
 *
 * Usage: sshspec-libssh-server PORT
 *
 * Listens on 127.0.0.1:PORT (or on $SSHSPEC_LISTEN:PORT: 0.0.0.0 inside a target image).
 * Credentials come from the environment: SSHSPEC_USER (required), SSHSPEC_PASSWORD (password and
 * keyboard-interactive; unset disables both) and SSHSPEC_AUTHORIZED_KEYS (an authorized_keys file
 * for publickey; optional). Fresh ed25519, ECDSA P-256 and RSA 3072 host keys are generated at
 * start (ssh_pki_generate). Prints `READY <port>` on stdout once listening; logs to stderr.
 *
 * Session channels: `exec` runs `/bin/sh -c COMMAND` and `shell` runs `/bin/sh`, on pipes, with
 * stdin, stdout and stderr (extended data 1) streamed; then exit-status (or exit-signal for a
 * command killed by a signal), EOF and CLOSE. pty-req, env, subsystems and forwarding are refused:
 * no callback is set for them, which is how the library refuses. Everything else is the library's
 * default; nothing of the library is patched or worked around, so its deviations show. */
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHANNELS 64
#define MAX_KEYS 16

static const char *user_name, *password;
static ssh_key authorized[MAX_KEYS];
static int n_authorized;

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "libssh-server[%d]: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

struct conn;

/* One session channel and the command behind it. */
struct chan {
    struct conn *conn;
    ssh_channel channel;
    pid_t pid;
    int in, out, err;   /* the command's stdin (ours to write), stdout, stderr; -1 once closed */
    char *pending;      /* stdin bytes the command has not taken yet */
    size_t pending_len;
    int client_eof;     /* the client sent EOF: close stdin once pending is written */
    int status, reaped; /* the command's wait status, once reaped */
    int done;           /* exit status, EOF and CLOSE sent, or the client closed */
    int client_closed;  /* the client sent CLOSE: answered with ours from the poll loop */
    int polling;        /* stdout and stderr are in the event (the client's window has room) */
    int out_ended, err_ended;
    struct ssh_channel_callbacks_struct cb;
};

struct conn {
    ssh_session session;
    ssh_event event;
    int kbdint_user_ok; /* the keyboard-interactive exchange under way is for our user */
    struct chan chans[MAX_CHANNELS];
};

static void load_authorized_keys(const char *path) {
    FILE *f = fopen(path, "r");
    char line[16384];
    if (f == NULL) {
        say("cannot read %s: %s", path, strerror(errno));
        return;
    }
    while (fgets(line, sizeof line, f) != NULL && n_authorized < MAX_KEYS) {
        char *type = strtok(line, " \t\r\n"), *b64 = strtok(NULL, " \t\r\n");
        ssh_key key = NULL;
        if (type == NULL || b64 == NULL || type[0] == '#')
            continue;
        if (ssh_pki_import_pubkey_base64(b64, ssh_key_type_from_name(type), &key) == SSH_OK)
            authorized[n_authorized++] = key;
        else
            say("authorized_keys: cannot read a %s key", type);
    }
    fclose(f);
}

static int auth_password(ssh_session session, const char *user, const char *pass, void *userdata) {
    (void)session, (void)userdata;
    if (password != NULL && strcmp(user, user_name) == 0 && strcmp(pass, password) == 0)
        return SSH_AUTH_SUCCESS;
    return SSH_AUTH_DENIED;
}

static int auth_pubkey(ssh_session session, const char *user, struct ssh_key_struct *pubkey, char state,
                       void *userdata) {
    (void)session, (void)userdata;
    if (strcmp(user, user_name) != 0)
        return SSH_AUTH_DENIED;
    for (int i = 0; i < n_authorized; i++) {
        if (ssh_key_cmp(pubkey, authorized[i], SSH_KEY_CMP_PUBLIC) != 0)
            continue;
        /* NONE: a query without a signature (the library answers PK_OK); VALID: a signature the
         * library has verified. */
        if (state == SSH_PUBLICKEY_STATE_NONE || state == SSH_PUBLICKEY_STATE_VALID)
            return SSH_AUTH_SUCCESS;
    }
    return SSH_AUTH_DENIED;
}

/* keyboard-interactive has no server callback: the library hands it over as a message. Returning
 * 1 leaves a message to the library's default answer (USERAUTH_FAILURE). Every user gets the
 * prompt, as a server that does not reveal which users exist would do; the answer is checked
 * against the user the exchange began with. */
static int on_message(ssh_session session, ssh_message msg, void *userdata) {
    struct conn *c = userdata;
    if (ssh_message_type(msg) != SSH_REQUEST_AUTH || ssh_message_subtype(msg) != SSH_AUTH_METHOD_INTERACTIVE
        || password == NULL)
        return 1;
    if (!ssh_message_auth_kbdint_is_response(msg)) {
        const char *prompts[] = {"Password: "};
        char echo[] = {0};
        const char *user = ssh_message_auth_user(msg);
        c->kbdint_user_ok = user != NULL && strcmp(user, user_name) == 0;
        ssh_message_auth_interactive_request(msg, "", "", 1, prompts, echo);
        return 0;
    }
    if (c->kbdint_user_ok && ssh_userauth_kbdint_getnanswers(session) == 1
        && strcmp(ssh_userauth_kbdint_getanswer(session, 0), password) == 0) {
        ssh_message_auth_reply_success(msg, 0);
        return 0;
    }
    return 1;
}

static void close_stdin_if_done(struct chan *ch) {
    if (ch->client_eof && ch->pending_len == 0 && ch->in >= 0) {
        close(ch->in);
        ch->in = -1;
    }
}

/* Writes what the command takes now; the rest waits for the next data or poll round. */
static void flush_stdin(struct chan *ch) {
    while (ch->in >= 0 && ch->pending_len > 0) {
        ssize_t n = write(ch->in, ch->pending, ch->pending_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            ch->pending_len = 0; /* the command closed its stdin: drop what it will never read */
            break;
        }
        memmove(ch->pending, ch->pending + n, ch->pending_len - n);
        ch->pending_len -= n;
    }
    close_stdin_if_done(ch);
}

static int on_data(ssh_session session, ssh_channel channel, void *data, uint32_t len, int is_stderr,
                   void *userdata) {
    struct chan *ch = userdata;
    (void)session, (void)channel, (void)is_stderr;
    if (ch->in < 0)
        return len;
    ch->pending = realloc(ch->pending, ch->pending_len + len);
    memcpy(ch->pending + ch->pending_len, data, len);
    ch->pending_len += len;
    flush_stdin(ch);
    return len;
}

static void on_eof(ssh_session session, ssh_channel channel, void *userdata) {
    struct chan *ch = userdata;
    (void)session, (void)channel;
    ch->client_eof = 1;
    flush_stdin(ch);
}

static void on_close(ssh_session session, ssh_channel channel, void *userdata) {
    struct chan *ch = userdata;
    (void)session, (void)channel;
    ch->client_closed = 1;
}

/* A command's stdout or stderr, forwarded as channel data: never more than the client's window,
 * so ssh_channel_write does not wait for a window adjust inside this callback (it would poll the
 * other channels' descriptors from within it). */
static int on_output(socket_t fd, int revents, void *userdata) {
    struct chan *ch = userdata;
    char buf[32768];
    size_t room = ch->done ? sizeof buf : ssh_channel_window_size(ch->channel);
    ssize_t n;
    (void)revents;
    if (room == 0)
        return 0;
    n = read(fd, buf, room < sizeof buf ? room : sizeof buf);
    if (n > 0) {
        if (!ch->done) {
            if (fd == ch->out)
                ssh_channel_write(ch->channel, buf, n);
            else
                ssh_channel_write_stderr(ch->channel, buf, n);
        }
        return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    /* End of output: the descriptor leaves the event from the poll loop, not from inside the
     * event's own iteration. */
    if (fd == ch->out)
        ch->out_ended = 1;
    else
        ch->err_ended = 1;
    return 0;
}

static void drop_ended_output(struct chan *ch) {
    int *fds[2] = {&ch->out, &ch->err}, *ended[2] = {&ch->out_ended, &ch->err_ended};
    for (int i = 0; i < 2; i++)
        if (*ended[i] && *fds[i] >= 0) {
            if (ch->polling)
                ssh_event_remove_fd(ch->conn->event, *fds[i]);
            close(*fds[i]);
            *fds[i] = -1;
        }
}

/* Output is polled only while the client's window has room: a full window stops the reading
 * (and so the command, once its pipe fills) until the client adjusts it. */
static void poll_output(struct chan *ch) {
    int want = ch->done || ssh_channel_window_size(ch->channel) > 0;
    if (want == ch->polling)
        return;
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? ch->out : ch->err;
        if (fd < 0)
            continue;
        if (want)
            ssh_event_add_fd(ch->conn->event, fd, POLLIN, on_output, ch);
        else
            ssh_event_remove_fd(ch->conn->event, fd);
    }
    ch->polling = want;
}

static int start_command(struct chan *ch, const char *command) {
    int in[2], out[2], err[2];
    if (ch->pid > 0)
        return -1; /* one command per channel */
    if (pipe(in) < 0 || pipe(out) < 0 || pipe(err) < 0)
        return -1;
    ch->pid = fork();
    if (ch->pid < 0)
        return -1;
    if (ch->pid == 0) {
        setsid();
        dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        signal(SIGPIPE, SIG_DFL);
        if (command != NULL)
            execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        else
            execl("/bin/sh", "sh", (char *)NULL);
        _exit(127);
    }
    close(in[0]), close(out[1]), close(err[1]);
    ch->in = in[1], ch->out = out[0], ch->err = err[0];
    fcntl(ch->in, F_SETFL, O_NONBLOCK);
    ssh_event_add_fd(ch->conn->event, ch->out, POLLIN, on_output, ch);
    ssh_event_add_fd(ch->conn->event, ch->err, POLLIN, on_output, ch);
    ch->polling = 1;
    say("run %s", command != NULL ? command : "a shell");
    return 0;
}

static int on_exec(ssh_session session, ssh_channel channel, const char *command, void *userdata) {
    (void)session, (void)channel;
    return start_command(userdata, command);
}

static int on_shell(ssh_session session, ssh_channel channel, void *userdata) {
    (void)session, (void)channel;
    return start_command(userdata, NULL);
}

static ssh_channel on_channel_open(ssh_session session, void *userdata) {
    struct conn *c = userdata;
    for (int i = 0; i < MAX_CHANNELS; i++) {
        struct chan *ch = &c->chans[i];
        if (ch->channel != NULL) {
            /* A slot is free again once its channel is closed both ways and its command reaped. */
            if (!ch->done || !ssh_channel_is_closed(ch->channel) || (ch->pid > 0 && !ch->reaped))
                continue;
            ssh_channel_free(ch->channel);
            free(ch->pending);
        }
        memset(ch, 0, sizeof *ch);
        ch->conn = c;
        ch->in = ch->out = ch->err = -1;
        ch->channel = ssh_channel_new(session);
        ch->cb.userdata = ch;
        ch->cb.channel_data_function = on_data;
        ch->cb.channel_eof_function = on_eof;
        ch->cb.channel_close_function = on_close;
        ch->cb.channel_exec_request_function = on_exec;
        ch->cb.channel_shell_request_function = on_shell;
        ssh_callbacks_init(&ch->cb);
        ssh_set_channel_callbacks(ch->channel, &ch->cb);
        return ch->channel;
    }
    return NULL;
}

static const char *signal_name(int sig) {
    static const struct { int sig; const char *name; } names[] = {
        {SIGABRT, "ABRT"}, {SIGALRM, "ALRM"}, {SIGFPE, "FPE"}, {SIGHUP, "HUP"}, {SIGILL, "ILL"},
        {SIGINT, "INT"}, {SIGKILL, "KILL"}, {SIGPIPE, "PIPE"}, {SIGQUIT, "QUIT"}, {SIGSEGV, "SEGV"},
        {SIGTERM, "TERM"}, {SIGUSR1, "USR1"}, {SIGUSR2, "USR2"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig)
            return names[i].name;
    return "USR2";
}

/* Once a command has exited and its output is drained: exit-status or exit-signal, EOF, CLOSE.
 * A channel the client closed first gets our CLOSE (the library leaves that to the application)
 * and its command a SIGHUP. */
static void finish(struct chan *ch) {
    if (ch->client_closed && !ch->done) {
        if (ch->pid > 0 && !ch->reaped)
            kill(-ch->pid, SIGHUP);
        ssh_channel_close(ch->channel);
        ch->done = 1;
    }
    if (ch->pid > 0 && !ch->reaped && waitpid(ch->pid, &ch->status, WNOHANG) == ch->pid)
        ch->reaped = 1;
    if (ch->done || !ch->reaped || ch->out >= 0 || ch->err >= 0)
        return;
    if (WIFSIGNALED(ch->status))
        ssh_channel_request_send_exit_signal(ch->channel, signal_name(WTERMSIG(ch->status)), 0, "", "");
    else
        ssh_channel_request_send_exit_status(ch->channel, WEXITSTATUS(ch->status));
    ssh_channel_send_eof(ch->channel);
    ssh_channel_close(ch->channel);
    say("command %d ended, status %d", (int)ch->pid, ch->status);
    ch->done = 1;
}

static void handle(ssh_session session) {
    struct conn c;
    struct ssh_server_callbacks_struct cb = {
        .userdata = &c,
        .auth_password_function = auth_password,
        .auth_pubkey_function = auth_pubkey,
        .channel_open_request_session_function = on_channel_open,
    };
    int methods = (n_authorized > 0 ? SSH_AUTH_METHOD_PUBLICKEY : 0)
                  | (password != NULL ? SSH_AUTH_METHOD_PASSWORD | SSH_AUTH_METHOD_INTERACTIVE : 0);
    memset(&c, 0, sizeof c);
    c.session = session;
    ssh_callbacks_init(&cb);
    ssh_set_server_callbacks(session, &cb);
    ssh_set_message_callback(session, on_message, &c);
    ssh_set_auth_methods(session, methods);
    if (ssh_handle_key_exchange(session) != SSH_OK) {
        say("key exchange: %s", ssh_get_error(session));
        return;
    }
    c.event = ssh_event_new();
    ssh_event_add_session(c.event, session);
    /* The documented ways to learn that a session has ended: dopoll's SSH_ERROR, and the status
     * bits (a closed or failed socket). */
    while (ssh_is_connected(session) && !(ssh_get_status(session) & (SSH_CLOSED | SSH_CLOSED_ERROR))) {
        if (ssh_event_dopoll(c.event, 100) == SSH_ERROR) {
            say("connection: %s", ssh_get_error(session));
            break;
        }
        for (int i = 0; i < MAX_CHANNELS; i++)
            if (c.chans[i].channel != NULL) {
                flush_stdin(&c.chans[i]);
                drop_ended_output(&c.chans[i]);
                finish(&c.chans[i]);
                if (c.chans[i].pid > 0)
                    poll_output(&c.chans[i]);
            }
    }
    for (int i = 0; i < MAX_CHANNELS; i++)
        if (c.chans[i].pid > 0 && !c.chans[i].reaped)
            kill(-c.chans[i].pid, SIGHUP);
    ssh_event_free(c.event);
    ssh_disconnect(session);
}

int main(int argc, char **argv) {
    const char *listen = getenv("SSHSPEC_LISTEN"), *keys = getenv("SSHSPEC_AUTHORIZED_KEYS");
    static const struct { enum ssh_keytypes_e type; int bits; } host_keys[] = {
        {SSH_KEYTYPE_ED25519, 0}, {SSH_KEYTYPE_ECDSA_P256, 256}, {SSH_KEYTYPE_RSA, 3072},
    };
    ssh_bind bind;
    int port;
    if (argc != 2 || (port = atoi(argv[1])) <= 0) {
        fprintf(stderr, "usage: sshspec-libssh-server PORT\n");
        return 2;
    }
    user_name = getenv("SSHSPEC_USER");
    if (user_name == NULL || *user_name == '\0') {
        fprintf(stderr, "libssh-server: SSHSPEC_USER is not set\n");
        return 2;
    }
    password = getenv("SSHSPEC_PASSWORD");
    if (keys != NULL && *keys != '\0')
        load_authorized_keys(keys);
    if (listen == NULL || *listen == '\0')
        listen = "127.0.0.1";
    /* Connection processes are reaped by the kernel; each one reaps its own commands. */
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    ssh_init();
    bind = ssh_bind_new();
    for (size_t i = 0; i < sizeof host_keys / sizeof host_keys[0]; i++) {
        ssh_key key = NULL;
        if (ssh_pki_generate(host_keys[i].type, host_keys[i].bits, &key) != SSH_OK) {
            fprintf(stderr, "libssh-server: cannot generate a %s host key\n", ssh_key_type_to_char(host_keys[i].type));
            return 1;
        }
        ssh_bind_options_set(bind, SSH_BIND_OPTIONS_IMPORT_KEY, key);
    }
    ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDADDR, listen);
    ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDPORT, &port);
    if (ssh_bind_listen(bind) != SSH_OK) {
        fprintf(stderr, "libssh-server: listen on %s:%d: %s\n", listen, port, ssh_get_error(bind));
        return 1;
    }
    say("libssh %s listening on %s:%d", ssh_version(0), listen, port);
    printf("READY %d\n", port);
    fflush(stdout);
    for (;;) {
        ssh_session session = ssh_new();
        pid_t pid;
        if (ssh_bind_accept(bind, session) != SSH_OK) {
            say("accept: %s", ssh_get_error(bind));
            ssh_free(session);
            continue;
        }
        pid = fork();
        if (pid == 0) {
            signal(SIGCHLD, SIG_DFL);
            ssh_bind_free(bind);
            handle(session);
            ssh_free(session);
            _exit(0);
        }
        if (pid < 0)
            say("fork: %s", strerror(errno));
        ssh_free(session);
    }
}
