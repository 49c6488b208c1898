// A thin SSH server on Go's golang.org/x/crypto/ssh (ssh.ServerConfig and ssh.NewServerConn), as
// a Go service embedding the library would be written.
//
// Usage: sshspec-go-server PORT
//
// Listens on 127.0.0.1:PORT (or on $SSHSPEC_LISTEN:PORT: 0.0.0.0 inside a target image).
// Credentials come from the environment: SSHSPEC_USER (required), SSHSPEC_PASSWORD (password and
// keyboard-interactive; unset disables both) and SSHSPEC_AUTHORIZED_KEYS (an authorized_keys file
// for publickey; optional). Fresh ed25519, ECDSA P-256 and RSA 3072 host keys are generated at
// start. Prints `READY <port>` on stdout once listening; logs to stderr.
//
// Session channels: `exec` runs `/bin/sh -c COMMAND` and `shell` runs `/bin/sh`, on pipes, with
// stdin, stdout and stderr (extended data 1) streamed; then exit-status (or exit-signal for a
// command killed by a signal), EOF and CLOSE. Every other channel type and request is refused, as
// the library leaves them to the application; global requests get the library's DiscardRequests.
// It builds with the Go and x/crypto of Debian's packages in GOPATH mode (no modules, no network),
// so it uses nothing newer than Go 1.19.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
)

var user, password string
var hasPassword bool
var authorized []ssh.PublicKey

func main() {
	log.SetPrefix(fmt.Sprintf("go-server[%d]: ", os.Getpid()))
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sshspec-go-server PORT")
		os.Exit(2)
	}
	user = os.Getenv("SSHSPEC_USER")
	if user == "" {
		fmt.Fprintln(os.Stderr, "go-server: SSHSPEC_USER is not set")
		os.Exit(2)
	}
	password, hasPassword = os.LookupEnv("SSHSPEC_PASSWORD")
	if path := os.Getenv("SSHSPEC_AUTHORIZED_KEYS"); path != "" {
		authorized = readAuthorizedKeys(path)
	}
	config := &ssh.ServerConfig{}
	if hasPassword {
		config.PasswordCallback = func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
			if c.User() == user && string(pass) == password {
				return nil, nil
			}
			return nil, fmt.Errorf("wrong password for %q", c.User())
		}
		config.KeyboardInteractiveCallback = func(c ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			answers, err := ask("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if c.User() == user && len(answers) == 1 && answers[0] == password {
				return nil, nil
			}
			return nil, fmt.Errorf("wrong keyboard-interactive answer for %q", c.User())
		}
	}
	if len(authorized) > 0 {
		config.PublicKeyCallback = func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range authorized {
				if c.User() == user && bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil, nil
				}
			}
			return nil, fmt.Errorf("key not authorized for %q", c.User())
		}
	}
	for _, signer := range hostKeys() {
		config.AddHostKey(signer)
	}
	addr := os.Getenv("SSHSPEC_LISTEN")
	if addr == "" {
		addr = "127.0.0.1"
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(addr, os.Args[1]))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	log.Printf("listening on %s", listener.Addr())
	fmt.Printf("READY %s\n", os.Args[1])
	for {
		conn, err := listener.Accept()
		if err != nil {
			log.Printf("accept: %v", err)
			continue
		}
		go serve(conn, config)
	}
}

func readAuthorizedKeys(path string) []ssh.PublicKey {
	data, err := os.ReadFile(path)
	if err != nil {
		log.Printf("cannot read %s: %v", path, err)
		return nil
	}
	var keys []ssh.PublicKey
	for len(bytes.TrimSpace(data)) > 0 {
		key, _, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			break
		}
		keys = append(keys, key)
		data = rest
	}
	return keys
}

func hostKeys() []ssh.Signer {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	must(err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 3072)
	must(err)
	var signers []ssh.Signer
	for _, k := range []interface{}{edKey, ecKey, rsaKey} {
		s, err := ssh.NewSignerFromKey(k)
		must(err)
		signers = append(signers, s)
	}
	return signers
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func serve(conn net.Conn, config *ssh.ServerConfig) {
	defer conn.Close()
	sconn, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		log.Printf("%s: handshake: %v", conn.RemoteAddr(), err)
		return
	}
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			log.Printf("accept channel: %v", err)
			continue
		}
		go session(ch, requests)
	}
}

// session answers a session channel's requests: one exec or shell, nothing else.
func session(ch ssh.Channel, requests <-chan *ssh.Request) {
	started := false
	for req := range requests {
		var argv []string
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if ssh.Unmarshal(req.Payload, &p) != nil {
				break
			}
			argv = []string{"/bin/sh", "-c", p.Command}
		case "shell":
			argv = []string{"/bin/sh"}
		}
		if argv == nil || started {
			req.Reply(false, nil)
			continue
		}
		cmd, err := start(ch, argv)
		if err != nil {
			log.Printf("cannot start %q: %v", argv, err)
			req.Reply(false, nil)
			continue
		}
		started = true
		req.Reply(true, nil)
		go finish(ch, cmd)
	}
	// The client closed the channel (or the connection went away).
	ch.Close()
}

type command struct {
	cmd    *exec.Cmd
	output sync.WaitGroup
	argv   []string
}

func start(ch ssh.Channel, argv []string) (*command, error) {
	c := &command{cmd: exec.Command(argv[0], argv[1:]...), argv: argv}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	log.Printf("run %q", strings.Join(argv, " "))
	go func() {
		io.Copy(stdin, ch) // until the client's EOF
		stdin.Close()
	}()
	c.output.Add(2)
	go func() { io.Copy(ch, stdout); c.output.Done() }()
	go func() { io.Copy(ch.Stderr(), stderr); c.output.Done() }()
	return c, nil
}

// finish waits for the command and its output, then sends its exit status, EOF and CLOSE.
func finish(ch ssh.Channel, c *command) {
	c.output.Wait()
	err := c.cmd.Wait()
	status := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if status.Signaled() {
		name := signalName(status.Signal())
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Message    string
			Lang       string
		}{name, status.CoreDump(), "", ""}))
	} else {
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status.ExitStatus())}))
	}
	log.Printf("%q ended: %v", strings.Join(c.argv, " "), err)
	ch.CloseWrite()
	ch.Close()
}

// signalName names a signal as the SSH exit-signal request does (RFC 4254 §6.10: without "SIG").
func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE", syscall.SIGHUP: "HUP",
		syscall.SIGILL: "ILL", syscall.SIGINT: "INT", syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE",
		syscall.SIGQUIT: "QUIT", syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
		syscall.SIGUSR2: "USR2",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprint(int(s))
}
