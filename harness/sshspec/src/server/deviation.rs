//! The rules the fixture server can break, one small named behaviour change each, tied to the
//! clauses it breaks. `sshspec validate` runs the catalogue against the fixture made deviant one
//! rule at a time: some scenario citing one of the rule's clauses must FAIL, or the catalogue is
//! blind to that deviation.

/// One way of breaking the protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct Deviation {
    /// Stable name (`deviate NAME` in the fixture's configuration).
    pub name: &'static str,
    /// The clause ids (scenarios/clauses/) the behaviour breaks.
    pub clauses: &'static [&'static str],
    /// What the deviant server does instead.
    pub what: &'static str,
}

const fn d(name: &'static str, clauses: &'static [&'static str], what: &'static str) -> Deviation {
    Deviation { name, clauses, what }
}

/// Every deviation, grouped by document.
pub const DEVIATIONS: &[Deviation] = &[
    // RFC 4253: identification, packets, negotiation, key exchange, transport messages.
    d("ssh1-client-accepted", &["4253-4.2-c"], "answers a client that announces protocol 1.5 as if it were 2.0"),
    d("no-identification-crlf", &["4253-4.2-e"], "ends its identification line with LF only"),
    d("pre-banner-ssh-line", &["4253-4.2-i"], "sends a line beginning with SSH- before its identification"),
    d("pre-banner-bare-lf", &["4253-4.2-h"], "sends a line before its identification ended by LF alone"),
    d("compat-pre-banner-line", &["4253-5.1-e"], "in SSH-1 compatibility mode, sends a line before its identification"),
    d("compat-banner-cr", &["4253-5.1-c"], "in SSH-1 compatibility mode, ends its identification with CR LF"),
    d("compat-announces-2.0", &["4253-5.1-a"], "in SSH-1 compatibility mode, announces protocol 2.0"),
    d(
        "compat-eager-kexinit",
        &["4253-5.1-d"],
        "in SSH-1 compatibility mode, sends its KEXINIT before the client's identification has come",
    ),
    d("identification-with-minus", &["4253-4.2-l"], "puts a minus sign in its softwareversion"),
    d("empty-mac-list", &["4253-7.1-d"], "sends an empty MAC list for client-to-server"),
    d("mpint-not-minimal", &["4251-5-d"], "sends its Diffie-Hellman f with an unnecessary leading zero byte"),
    d(
        "mac-before-newkeys",
        &["4253-6-d", "4253-6.4-a"],
        "appends 20 bytes, as if of a MAC, to each packet before its first NEWKEYS",
    ),
    d("zero-padding", &["4253-6-c"], "pads every packet with zero bytes instead of random ones"),
    d("short-padding-sent", &["4253-6-b"], "sends an IGNORE with 3 bytes of padding after each NEWKEYS"),
    d(
        "misaligned-packet-accepted",
        &["4253-6-e", "4253-6-f"],
        "accepts packets whose length is not a multiple of the block size",
    ),
    d("huge-length-awaited", &["4253-6.1-c"], "waits for the body of a packet announcing a length of 2 GiB"),
    d(
        "long-packets-refused",
        &["4253-6.1-b"],
        "announces a maximum packet of 64 KiB on its channels, then refuses any packet over 35000 bytes",
    ),
    d("bad-mac-ignored", &["4253-6.4-d", "4253-11.1-a"], "drops a packet whose MAC or tag is wrong and goes on"),
    d(
        "server-kex-preference",
        &["4253-7.1-g"],
        "chooses the key exchange method by its own preference, not the client's",
    ),
    d("server-host-key-preference", &["4253-7.1-j"], "chooses the host key algorithm by its own preference"),
    d("server-cipher-preference", &["4253-7.1-l"], "chooses ciphers by its own preference"),
    d("server-mac-preference", &["4253-7.1-n"], "chooses MACs by its own preference"),
    d(
        "no-common-algorithm-kept-open",
        &["4253-7.1-h", "4253-7.1-k", "4253-7.1-m", "4253-7.1-o", "4253-7.1-q"],
        "keeps the connection open when a list has nothing in common",
    ),
    d("names-case-insensitive", &["4251-6-c"], "matches algorithm names without regard to case"),
    d("right-guess-ignored", &["4253-7-a"], "ignores a correctly guessed key exchange packet"),
    d("wrong-guess-used", &["4253-7-b", "4253-7.1-v"], "answers a wrongly guessed key exchange packet"),
    d(
        "guess-without-flag",
        &["4253-7.1-t"],
        "sends a key exchange packet right behind its KEXINIT, whose first_kex_packet_follows is FALSE",
    ),
    d(
        "preferences-reshuffled",
        &["4253-7.1-b", "4253-7.1-c", "4251-4.3-b"],
        "lists its key exchange methods in a new random order on every connection",
    ),
    d(
        "dh-e-unchecked",
        &["4253-8-a", "8268-4-a", "4419-3-d", "4419-3-e"],
        "answers a Diffie-Hellman e outside [1, p-1] or one that makes K trivial, in fixed groups and group exchange",
    ),
    d(
        "ecdh-point-unchecked",
        &["8731-3-c", "8731-3-d", "8731-3-e", "5656-4-b"],
        "answers a curve25519 value of the wrong length or of small order, and a NIST-curve point that is not on the curve",
    ),
    d(
        "exchange-hash-always-sha256",
        &["5656-6.3-a", "8268-3-c"],
        "computes the exchange hash with SHA-256 whatever the method names (nistp384, nistp521, the sha512 groups)",
    ),
    d(
        "gex-hash-without-bounds",
        &["4419-3-i"],
        "leaves min and max out of a group exchange's hash, as if the client had sent the old request",
    ),
    d(
        "gex-largest-not-returned",
        &["4419-3-g"],
        "ends a group exchange whose preferred size is above 4096 bits instead of sending its largest group",
    ),
    d(
        "gex-largest-allowed",
        &["4419-3-f"],
        "answers a group exchange request with the largest group its max allows, not the smallest that fits",
    ),
    d(
        "gex-old-hash-with-bounds",
        &["4419-5-a"],
        "hashes an old group exchange request (n alone) with a min and a max the client never sent",
    ),
    d(
        "curve25519-k-as-string",
        &["8731-3.1-a"],
        "encodes a curve25519 shared secret in H and the keys as a 32-byte string, not as an mpint",
    ),
    // RFC 9142 (and RFC 5656, 8268): which key exchange methods a server offers.
    d("no-curve25519", &["9142-3.1.1-a"], "does not list curve25519-sha256 (only its @libssh.org alias)"),
    d(
        "no-group14-sha256",
        &["9142-3.2.2-a", "8268-3-a", "4251-4.2-a", "4251-6-a"],
        "does not list diffie-hellman-group14-sha256, the key exchange method every implementation must support",
    ),
    d("no-group16-sha512", &["9142-3.2.2-b"], "does not list diffie-hellman-group16-sha512"),
    d(
        "nist-curves-partial",
        &["9142-3.1.3-b", "5656-10.1-a", "5656-10.1-b"],
        "lists ecdh-sha2-nistp256 without nistp384 and nistp521",
    ),
    d(
        "kex-abort-protocol-error",
        &["8731-3-f"],
        "ends a key exchange it refuses with a DISCONNECT of reason PROTOCOL_ERROR, not KEY_EXCHANGE_FAILED",
    ),
    d(
        "no-nist-curves",
        &["9142-3.1.3-a", "5656-4-a"],
        "lists none of the ecdh-sha2-nistp* methods, though it has an ECDSA host key",
    ),
    d(
        "ephemeral-key-reused",
        &["5656-9-b"],
        "answers every ECDH key exchange, on every connection, with the same ephemeral key pair",
    ),
    d(
        "no-ecdsa-key-format",
        &["5656-3-a"],
        "offers ECDH key exchange but lists ECDSA neither among its host key algorithms nor in server-sig-algs",
    ),
    d("gss-sha1-offered", &["9142-3.4-c"], "lists gss-group14-sha1-*, a SHA-1 GSS-API key exchange"),
    d("no-hmac-sha2-256", &["6668-2-a"], "lists neither hmac-sha2-256 nor its encrypt-then-MAC form"),
    d("no-hmac-sha1", &["4253-6.4-e"], "lists neither hmac-sha1 nor its encrypt-then-MAC form"),
    d(
        "weak-kex-offered",
        &["9142-3.4-b", "9142-3.2.1-c", "9142-3.3-a"],
        "lists diffie-hellman-group1-sha1, diffie-hellman-group-exchange-sha1 and rsa1024-sha1",
    ),
    d("small-curve-offered", &["5656-9-a"], "lists ecdh-sha2-1.3.132.0.6 (secp112r1, a 112-bit curve)"),
    d(
        "group14-sha1-first",
        &["9142-3.4-a", "4251-9.3.8-a"],
        "lists diffie-hellman-group14-sha1 first, ahead of every SHA-2 method",
    ),
    d("gex-groups-to-4096", &["4419-3-c"], "has no group exchange group over 4096 bits"),
    d("gex-group-not-safe", &["4419-3-a"], "sends p - 2 of a MODP group (odd, not a safe prime) for group exchange"),
    d(
        "small-gex-group",
        &["9142-3.2.1-a", "9142-3.2.1-b", "4419-3-h"],
        "answers a group exchange request that allows 1024 bits with the 1024-bit Oakley group 2",
    ),
    d("gex-group-ignores-bounds", &["4419-3-b"], "answers every group exchange request with its 2048-bit group"),
    d("session-id-follows-rekey", &["4253-9-d"], "makes the last exchange hash the session id"),
    d("signature-over-wrong-data", &["4253-8-c"], "signs the exchange hash with its first bit flipped"),
    d(
        "host-key-of-another-type",
        &["4253-6.6-c"],
        "sends its ssh-ed25519 key when an RSA or ECDSA host key algorithm was negotiated",
    ),
    d("signature-named-apart-from-key", &["4253-6.6-d"], "names its ssh-ed25519 signature \"ed25519\""),
    d("no-rsa-sha2-256-host-key", &["8332-3-a"], "offers rsa-sha2-512 and ssh-rsa host keys but not rsa-sha2-256"),
    d("no-aes128-ctr", &["4344-4-b"], "does not offer aes128-ctr"),
    d(
        "rsa-sha2-signed-with-sha1",
        &["8332-3.1-a"],
        "signs with ssh-rsa (SHA-1) when rsa-sha2-256 or rsa-sha2-512 was negotiated",
    ),
    d(
        "key-not-extended",
        &["4253-7.2-a", "4253-7.2-b", "4253-7.2-c"],
        "makes a key longer than the hash by repeating the first hash instead of hashing K, H and the key so far",
    ),
    d("no-unimplemented", &["4253-11.4-a"], "ignores unknown messages without answering UNIMPLEMENTED"),
    d("unimplemented-wrong-sequence", &["4253-11.4-a"], "answers UNIMPLEMENTED with the next sequence number"),
    d("ignore-is-fatal", &["4253-11.2-a"], "disconnects on SSH_MSG_IGNORE after the key exchange"),
    d("debug-is-fatal", &["4253-11.3-a"], "disconnects on SSH_MSG_DEBUG"),
    d("disconnect-ignored", &["4253-11.1-b"], "keeps the connection open after the client's DISCONNECT"),
    d("service-accept-wrong-name", &["4253-10-b"], "accepts ssh-userauth naming ssh-connection"),
    d("unknown-service-accepted", &["4253-10-a"], "accepts any service"),
    d(
        "unassigned-during-kex-fatal",
        &["4253-11.4-a"],
        "ends the connection at an unassigned generic message number (1-19) during a key exchange",
    ),
    d("data-during-own-rekey", &["4253-7.1-x"], "sends channel data between its KEXINIT and NEWKEYS"),
    d("never-rekeys", &["4253-9-c"], "never starts a key exchange of its own (seen with the rekey-256k variant)"),
    d("rekey-refused", &["4253-9-a"], "disconnects when the client starts a key re-exchange"),
    d(
        "client-data-during-own-kexinit-fatal",
        &["4253-7.1-y"],
        "disconnects on connection messages the client sent before it saw the fixture's rekey KEXINIT",
    ),
    d("nul-in-identification", &["4253-4.2-f"], "puts a null character in its identification line"),
    d("identification-over-255", &["4253-4.2-g"], "sends an identification line over 255 characters"),
    d("client-comment-refused", &["4253-4.2-d"], "disconnects a client whose identification carries comments"),
    d("empty-name-in-list", &["4251-5-g", "4253-7.1-a"], "lists an empty algorithm name (\"none,,zlib@openssh.com\")"),
    d("long-algorithm-name", &["4251-6-b", "4251-6-e"], "lists a host key algorithm name of 76 characters"),
    d("double-at-name", &["4251-6-e"], "lists a host key algorithm name with two at-signs"),
    d("name-with-space", &["4251-6-d"], "lists a host key algorithm name with a space in it"),
    d("nul-in-name-list", &["4251-5-i", "4251-5-b"], "ends a host key algorithm name with a NUL byte"),
    d("no-none-compression", &["4253-6.2-c"], "lists only zlib@openssh.com for server-to-client compression"),
    d("zero-cookie", &["4253-7.1-e"], "sends a KEXINIT cookie of 16 zero bytes"),
    d("3des-offered", &["4253-6.3-c"], "lists 3des-cbc last among its ciphers"),
    d(
        "cbc-chain-restarts",
        &["4253-6.3-b"],
        "under CBC, starts each packet it sends from the first IV again instead of the last ciphertext block",
    ),
    d(
        "none-cipher-offered",
        &["4253-6.3-j", "4253-6.4-f", "4251-9.3.1-a", "4251-9.3.2-a"],
        "lists the none cipher and the none MAC last in both directions",
    ),
    d("non-ascii-name", &["4251-5-h"], "lists a host key algorithm name that is not US-ASCII"),
    d("language-tags", &["4253-7.1-r", "4253-7.1-s"], "lists the language tag en-US in both directions of its KEXINIT"),
    d("guess-flag-without-guess", &["4253-7.1-u"], "sets first_kex_packet_follows, though no guessed packet follows"),
    d("large-packet-refused", &["4253-6.1-a"], "disconnects on payloads over 16 KiB"),
    d("server-compression-preference", &["4253-7.1-p"], "chooses compression by its own preference"),
    d("one-cipher-both-ways", &["4253-6.3-d", "4253-6.3-e"], "uses the client-to-server cipher in both directions"),
    d("one-mac-both-ways", &["4253-6.4-b"], "uses the client-to-server MAC in both directions"),
    d("unimplemented-then-disconnect", &["4253-11.4-b"], "answers UNIMPLEMENTED, then disconnects"),
    // Strict kex (OpenSSH PROTOCOL §1.10, draft-ietf-sshm-strict-kex).
    d(
        "strict-kex-names-mixed",
        &["SKEX-5.1-a"],
        "enables strict kex when the client offers the standard kex-strict-c and it lists only the pre-standard name",
    ),
    d(
        "strict-kex-lenient",
        &["SKEX-5.2-a", "OSSH-1.10-b"],
        "lets IGNORE, DEBUG and any other message through during a strict initial key exchange, before and after its own NEWKEYS",
    ),
    d(
        "strict-kex-late-kexinit-accepted",
        &["SKEX-5.2-b"],
        "accepts a strict client whose first message was not KEXINIT",
    ),
    d(
        "strict-kex-second-init-answered",
        &["SKEX-5.2-d"],
        "answers a second key exchange init message during a strict initial exchange",
    ),
    d(
        "strict-kex-no-sequence-reset",
        &["OSSH-1.10-c", "SKEX-5.3-a"],
        "offers strict kex but keeps its sequence numbers across NEWKEYS",
    ),
    d(
        "strict-kex-rekey-no-reset",
        &["SKEX-5.3-a", "SKEX-5.3-b", "SKEX-5.3-c"],
        "resets sequence numbers at the first NEWKEYS only, not after a rekey",
    ),
    d(
        "strict-kex-marker-in-rekey",
        &["SKEX-5.1-d", "OSSH-1.10-a"],
        "re-reads the strict kex marker in a rekey KEXINIT, and drops strict kex when it is absent",
    ),
    // RFC 8308: extension negotiation.
    d(
        "server-sig-algs-incomplete",
        &["8308-3.1-a"],
        "leaves rsa-sha2-256 out of server-sig-algs, though it accepts it",
    ),
    d("ext-info-size-limited", &["8308-2.5-e"], "disconnects on a client EXT_INFO whose values exceed 4 KiB"),
    d("no-ext-info", &["8308-2.4-c", "8308-3.1-b", "9142-3.5-a"], "never sends EXT_INFO"),
    d("ext-info-unasked", &["8308-2.4-c"], "sends EXT_INFO to a client that did not list ext-info-c"),
    d("ext-info-marker-negotiated", &["8308-2.2-c"], "lets ext-info-s be chosen as the key exchange method"),
    d("ext-info-c-as-own", &["8308-2.2-b"], "lists ext-info-c, the client's indicator, in its own KEXINIT"),
    d(
        "ext-info-order-sensitive",
        &["8308-2.5-b"],
        "disconnects on a client EXT_INFO whose first extension is not one it knows",
    ),
    d(
        "unknown-extension-fatal",
        &["8308-2.5-a", "8308-2.5-c", "8308-2.5-d"],
        "disconnects on an extension it does not know",
    ),
    d("rekeys-before-login", &["8308-3.2.1-b"], "starts key re-exchanges at its data limit before login"),
    // RFC 4252: authentication.
    d("none-lists-none", &["4252-4-a", "4252-5.2-c"], "lists none among the methods that can continue"),
    d("none-accepted", &["4252-4-b"], "logs in a user with a password on the none method"),
    d("banner-after-success", &["4252-5.4-b"], "sends a USERAUTH_BANNER right after USERAUTH_SUCCESS"),
    d("partial-success-on-failure", &["4252-5.1-e"], "sets partial success on every failure"),
    d("connection-before-login", &["4252-6-a"], "accepts connection-layer messages before authentication"),
    d("client-success-trusted", &["4252-6-b"], "takes the client's USERAUTH_SUCCESS as login (CVE-2018-10933)"),
    d(
        "early-channel-run",
        &["4252-6-a"],
        "acts on channel messages sent during the initial key exchange, unauthenticated (CVE-2025-32433)",
    ),
    d(
        "rogue-session",
        &["4253-7.1-x"],
        "acts on a USERAUTH_REQUEST sent in the clear during the initial key exchange (CVE-2023-46446)",
    ),
    d("pk-ok-names-key-type", &["4252-7-e"], "echoes the key type, not the requested algorithm, in PK_OK"),
    d("signature-unchecked", &["4252-7-b", "4252-7-f"], "accepts publickey requests whatever their signature"),
    d("success-repeated", &["4252-5.1-j"], "answers authentication requests after success with another SUCCESS"),
    d("unlimited-auth-tries", &["4252-4-e", "4252-4-f"], "never disconnects after failed attempts"),
    d("no-login-grace", &["4252-4-c", "4251-9.3.5-b"], "waits for authentication forever"),
    d(
        "partial-success-kept-across-users",
        &["4252-5-b", "4252-5-c"],
        "keeps a partial success when the user name changes",
    ),
    d("unknown-service-login", &["4252-5-e"], "logs in for a service that does not exist"),
    d(
        "unknown-service-silent-close",
        &["4252-5-d"],
        "closes the connection without a DISCONNECT when a request names a service that does not exist",
    ),
    d(
        "publickey-unlisted",
        &["4252-5-i"],
        "leaves publickey out of the methods that can continue, though it accepts it",
    ),
    d("any-user-accepted", &["4252-5-f"], "accepts the right password for any user name"),
    d("user-names-case-insensitive", &["4251-4.5-c"], "takes a user name in another case (SSHSPEC) for the test user"),
    d("unknown-method-disconnects", &["4252-5-g"], "disconnects on an unknown method instead of failing it"),
    d("keyboard-interactive-not-abandoned", &["4252-5-h"], "ignores other requests while keyboard-interactive waits"),
    d("aborted-method-failure", &["4252-5.1-i"], "sends a FAILURE for a keyboard-interactive round cut short"),
    d(
        "pipelined-failures-dropped",
        &["4252-5.1-g"],
        "takes 50 ms per failed request and sends no FAILURE when the next message has arrived meanwhile",
    ),
    d("completed-method-listed", &["4252-5.1-c"], "lists methods already passed among those that can continue"),
    d("partial-success-unset", &["4252-5.1-d"], "leaves partial success FALSE when a step of the chain passes"),
    d(
        "messages-after-login-dropped",
        &["4252-5.1-l"],
        "drops connection messages that arrive with the login (within 500 ms of SUCCESS)",
    ),
    d(
        "requests-after-success-failed",
        &["4252-5.1-k", "4252-5.3-a"],
        "answers authentication requests after success with FAILURE",
    ),
    d("unauthorized-key-accepted", &["4252-7-c"], "accepts any public key with a valid signature"),
    d(
        "hostbased-host-unchecked",
        &["4252-9-b"],
        "takes a hostbased request from a trusted host key whatever client host it names",
    ),
    d(
        "hostbased-address-unchecked",
        &["4252-9-c"],
        "takes a hostbased request naming a trusted host that the client's address is not",
    ),
    d(
        "rsa-signature-parsed",
        &["8332-5.3-a"],
        "verifies RSA signatures by parsing the decrypted block, ignoring what follows the hash",
    ),
    d("unknown-key-algorithm-accepted", &["4252-7-d"], "takes a public key under an algorithm it does not support"),
    d("expired-password-accepted", &["4252-8-g"], "logs in with an expired password"),
    d("password-change-unanswered", &["4252-8-h"], "does not answer a password change request"),
    // RFC 4256: keyboard-interactive.
    d("second-info-request-early", &["4256-3-a", "4256-3.2-b"], "sends a second INFO_REQUEST before the answer"),
    d("empty-prompt", &["4256-3.2-f"], "prompts with an empty string"),
    d("long-prompt", &["4256-3.2-d"], "prompts with a 52-character line where \"Password: \" would do"),
    d("prompt-language-tag", &["4256-3.2-c"], "tags its keyboard-interactive prompts with the language en-US"),
    d("num-responses-unchecked", &["4256-3.4-c"], "takes the first response whatever their number"),
    d("language-tag-refused", &["4256-3.1-b"], "refuses keyboard-interactive requests with a language tag"),
    d("non-ascii-user-fatal", &["4251-4.5-b"], "disconnects on a user name outside ASCII"),
    d(
        "keyboard-interactive-unknown-user-refused",
        &["4256-3.1-e"],
        "fails keyboard-interactive at once for an unknown user",
    ),
    d("keyboard-interactive-reprompt", &["4256-3.4-f"], "prompts again after a wrong answer instead of failing"),
    d("unsolicited-response-accepted", &["4256-3.4-g"], "takes an INFO_RESPONSE nobody asked for as login"),
    // RFC 4254: connection protocol.
    d(
        "local-type-failure-unknown",
        &["4254-5.1-c"],
        "refuses a direct-streamlocal@openssh.com it cannot connect with UNKNOWN_CHANNEL_TYPE",
    ),
    d(
        "unknown-channel-type-wrong-reason",
        &["4254-5.1-b"],
        "refuses unknown channel types with ADMINISTRATIVELY_PROHIBITED",
    ),
    d("window-ignored", &["4254-5.2-c"], "sends output without regard to the client's window"),
    d(
        "maximum-packet-ignored",
        &["4254-5.2-c"],
        "sends output in packets larger than the client's maximum packet size",
    ),
    d(
        "window-signed-32-bit",
        &["4254-5.2-a"],
        "keeps the client's window as a signed 32-bit number, so 2^32-1 is no window at all",
    ),
    d("window-adjust-overflows", &["4254-5.2-b"], "grants window in adjusts that take the client's window past 2^32-1"),
    d("eof-needs-window", &["4254-5.3-d"], "drops a CHANNEL_EOF that comes when the client has no window left"),
    d("close-not-answered", &["4254-5.3-b"], "does not answer the client's CHANNEL_CLOSE"),
    d("no-eof", &["4254-5.3-a"], "closes channels without sending EOF"),
    d("no-exit-status", &["4254-6.10-a"], "never reports the exit status"),
    d("channel-reply-always", &["4254-5.4-a"], "answers channel requests that asked for no reply"),
    d("unknown-channel-request-succeeds", &["4254-5.4-a"], "answers unknown channel requests with SUCCESS"),
    d("unknown-global-request-succeeds", &["4254-4-d"], "answers unknown global requests with SUCCESS"),
    d("global-reply-always", &["4254-4-a"], "answers global requests that asked for no reply"),
    d("stderr-as-data", &["4254-6.5-c"], "sends standard error as ordinary channel data"),
    d("channel-replies-reordered", &["4254-4-c"], "answers a channel's first request after its second"),
    d("global-replies-reordered", &["4254-4-b"], "answers a tcpip-forward after the global request that followed it"),
    d(
        "unknown-channel-type-unanswered",
        &["4254-5.1-a", "OSSH-2.3-a"],
        "does not answer an open of an unknown channel type",
    ),
    // OpenSSH PROTOCOL §2.4: Unix-domain socket forwarding.
    d(
        "streamlocal-reserved-checked",
        &["OSSH-2.4-a"],
        "refuses a direct-streamlocal channel whose reserved fields are not empty",
    ),
    d(
        "forwarded-streamlocal-path-missing",
        &["OSSH-2.4-b"],
        "opens forwarded-streamlocal channels without the socket path the client forwarded",
    ),
    // OpenSSH PROTOCOL §1.9: ping@openssh.com.
    d("pong-data-altered", &["OSSH-1.9-a"], "answers a PING with a PONG carrying empty data"),
    d("pongs-reordered", &["OSSH-1.9-b"], "answers the first PING only after the second"),
    d(
        "busy-while-program-runs",
        &["4254-6.5-b"],
        "answers no global request while a program runs on one of its channels",
    ),
    d("small-maximum-packet", &["4254-5.2-d", "4254-5.2-e"], "advertises a maximum packet of 16 KiB for its channels"),
    d("x11-open-accepted", &["4254-6.3.2-a"], "confirms x11 channel opens though it asked for no X11 forwarding"),
    d("forwarded-tcpip-open-accepted", &["4254-7.2-a"], "confirms forwarded-tcpip opens though it forwards no port"),
    d("zero-pty-size-refused", &["4254-6.2-a"], "refuses a pty request of zero columns or rows"),
    d("unknown-pty-mode-refused", &["4254-8-b"], "refuses a pty request carrying a terminal mode it does not know"),
    d("unknown-signal-closes", &["4254-6.9-a", "OSSH-2.6-a"], "closes the channel on a signal it does not know"),
    d("window-change-answered", &["4254-6.7-a"], "answers window-change requests that asked for no reply"),
    d("window-unlimited", &["8308-3.3.1-a"], "offers a window of 2^32-1 for every channel, as if without flow control"),
    // OpenSSH PROTOCOL §1.4-§1.6, §1.11: point encoding, encrypt-then-MAC, AES-GCM, EXT_INFO in auth.
    d("debug-chatter", &["4251-9.4.2-a"], "explains each refused login attempt in a DEBUG message"),
    d(
        "ext-info-during-auth",
        &["OSSH-1.11-a"],
        "sends an EXT_INFO before each USERAUTH_FAILURE, to clients that never sent ext-info-in-auth@openssh.com",
    ),
    d("ecdh-point-compressed", &["OSSH-1.4-a"], "sends its NIST-curve ECDH public value compressed"),
    d(
        "etm-mac-over-plaintext",
        &["OSSH-1.5-a"],
        "computes its encrypt-then-MAC MACs over the plaintext, as RFC 4253 does for the others",
    ),
    d(
        "aead-needs-common-mac",
        &["OSSH-1.6-a"],
        "fails the key exchange when the MAC lists share nothing, though AES-GCM is chosen",
    ),
    d(
        "strict-kex-pre-standard-name-only",
        &["SKEX-5.1-b"],
        "offers strict kex under the pre-standard name kex-strict-s-v00@openssh.com alone",
    ),
    d(
        "eow-to-any-client",
        &["OSSH-2.1-c"],
        "sends eow@openssh.com to a client that is not OpenSSH when a program exits before the client's EOF",
    ),
    d(
        "password-without-confidentiality",
        &["4252-8-d", "4251-9.4.1-a"],
        "accepts password authentication over the none cipher",
    ),
    // RFC 8308 §3.3: no-flow-control, which the fixture supports ("s").
    d(
        "no-flow-control-bad-value",
        &["8308-3.3-a"],
        "advertises no-flow-control with the value \"yes\", neither \"s\" nor \"p\"",
    ),
    d("no-flow-control-unilateral", &["8308-3.3-b"], "drops flow control though the client never sent no-flow-control"),
    d(
        "no-flow-control-window-kept",
        &["8308-3.3-c"],
        "keeps to the client's window after both sides agreed on no-flow-control",
    ),
    d(
        "no-flow-control-channels-at-once",
        &["8308-3.3-d"],
        "opens a second channel while one is open, though no-flow-control is in effect",
    ),
    d(
        "no-flow-control-one-channel-only",
        &["8308-3.3-e"],
        "refuses every channel after the first once no-flow-control is in effect, even when the first is closed",
    ),
    // RFC 4251 §9: policy the administrator sets (the variants test-user-denied, no-tcp-forwarding).
    d("deny-policy-ignored", &["4251-9.4.3-a"], "logs in a user its policy denies, given the right credentials"),
    d(
        "agent-channel-unasked",
        &["4251-4.3-c"],
        "opens an auth-agent@openssh.com channel toward a client that never asked for agent forwarding",
    ),
    d(
        "useless-method-listed",
        &["4252-5.1-b"],
        "lists password among the methods that can continue though only publickey is allowed",
    ),
    d(
        "empty-password-refused",
        &["4252-5.2-a"],
        "refuses `none` for a user who needs no authentication (an empty password its policy allows)",
    ),
    d("forwarding-policy-ignored", &["4251-9.5.2-a"], "grants tcpip-forward though forwarding is switched off"),
    // OpenSSH PROTOCOL §2.5 (host key rotation) and §3.1 (host-bound publickey).
    d("hostkeys-before-login", &["OSSH-2.5-a"], "announces its host keys right after its first NEWKEYS, before login"),
    d(
        "hostkeys-proof-without-session-id",
        &["OSSH-2.5-b"],
        "signs host key proofs over the name and the key, leaving out the session identifier",
    ),
    d(
        "hostkeys-proofs-in-own-order",
        &["OSSH-2.5-c"],
        "sends host key proofs in the order it announced its keys, not the request's",
    ),
    d(
        "hostbound-any-host-key",
        &["OSSH-3.1-a"],
        "accepts a host-bound publickey request that names another host key than the key exchange's",
    ),
    d("hostbound-version-1", &["OSSH-3.1-b"], "advertises publickey-hostbound@openssh.com with version \"1\""),
];

/// The deviation called `name`.
pub fn find(name: &str) -> Option<&'static Deviation> {
    DEVIATIONS.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_clause_is_in_the_registry() {
        let registry = crate::script::clauses::Registry::builtin().expect("the registry loads");
        let mut names = std::collections::BTreeSet::new();
        for d in DEVIATIONS {
            assert!(names.insert(d.name), "{} twice", d.name);
            assert!(!d.clauses.is_empty(), "{} cites no clause", d.name);
            for c in d.clauses {
                assert!(registry.get(c).is_some(), "{}: clause {c} is not in the registry", d.name);
            }
        }
    }
}
