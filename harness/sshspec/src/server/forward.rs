//! Remote forwarding for the fixture (RFC 4254 §7.1): `tcpip-forward` listens on a loopback
//! port, and each connection to it becomes a `forwarded-tcpip` channel to the client, its bytes
//! relayed both ways; OpenSSH's Unix-domain forms (PROTOCOL §2.4) likewise:
//! `streamlocal-forward@openssh.com` listens on a socket path (`forwarded-streamlocal` channels),
//! and a `direct-streamlocal` channel connects to one. Sockets are served by tasks that report to
//! the connection's loop through one queue, so the loop stays the only writer of the transport.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

/// A relayed socket: TCP or Unix-domain.
pub(super) trait Socket: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Socket for T {}

/// What a listener was asked for: a TCP (address, port) or a Unix-domain socket path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Listen {
    Tcp { address: Vec<u8>, port: u32 },
    Unix { path: Vec<u8> },
}

/// What the socket tasks report.
pub(super) enum Event {
    /// A connection to a forwarded port or socket, as the client asked for it; `origin` is the
    /// connecting end of a TCP connection.
    Accepted { on: Listen, stream: Box<dyn Socket>, origin: Option<SocketAddr> },
    /// Bytes read from a relayed socket, for our channel `channel`; empty at end of stream.
    Read { channel: u32, data: Vec<u8> },
}

/// The forwards and relayed sockets of one connection. Dropping it closes them all (and removes
/// the socket files it listened on).
pub(super) struct Forwards {
    listeners: BTreeMap<Listen, AbortHandle>,
    /// Accepted sockets whose channel the client has not confirmed yet, by our channel number.
    pending: BTreeMap<u32, Box<dyn Socket>>,
    /// Where bytes for each relayed socket go (an empty write shuts its sending side), and its
    /// reader, stopped when the channel closes.
    relays: BTreeMap<u32, Relay>,
    tasks: JoinSet<()>,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
}

struct Relay {
    to_socket: mpsc::UnboundedSender<Vec<u8>>,
    reader: AbortHandle,
}

/// How much one read from a relayed socket takes; a few of them queue before the reader waits.
const READ_CHUNK: usize = 32 * 1024;
const QUEUE: usize = 16;

impl Default for Forwards {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Forwards {
            listeners: BTreeMap::new(),
            pending: BTreeMap::new(),
            relays: BTreeMap::new(),
            tasks: JoinSet::new(),
            tx,
            rx,
        }
    }
}

impl Forwards {
    /// Listens for `tcpip-forward`; the port bound (the one asked for, or the one chosen for 0),
    /// or why not. Only loopback addresses: the fixture never listens beyond this machine.
    pub async fn listen(&mut self, address: &[u8], port: u32) -> Result<u32, String> {
        let host = match address {
            b"127.0.0.1" | b"localhost" => "127.0.0.1",
            b"::1" => "::1",
            other => {
                return Err(format!("the fixture listens on loopback only, not {:?}", String::from_utf8_lossy(other)));
            }
        };
        let wanted = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
        let listener = TcpListener::bind((host, wanted)).await.map_err(|e| format!("{host}:{port}: {e}"))?;
        let bound = u32::from(listener.local_addr().map_err(|e| e.to_string())?.port());
        // Known by the port bound, which is what a cancel names after a request for port 0.
        let on = Listen::Tcp { address: address.to_vec(), port: bound };
        let tx = self.tx.clone();
        let key = on.clone();
        let handle = self.tasks.spawn(async move {
            while let Ok((stream, origin)) = listener.accept().await {
                let e = Event::Accepted { on: key.clone(), stream: Box::new(stream), origin: Some(origin) };
                if tx.send(e).await.is_err() {
                    return;
                }
            }
        });
        self.listeners.insert(on, handle);
        Ok(bound)
    }

    /// Listens for `streamlocal-forward@openssh.com` on `path` (which must not exist yet).
    pub fn listen_unix(&mut self, path: &[u8]) -> Result<(), String> {
        let name = String::from_utf8_lossy(path).into_owned();
        let listener = UnixListener::bind(&name).map_err(|e| format!("{name}: {e}"))?;
        let on = Listen::Unix { path: path.to_vec() };
        let (tx, key) = (self.tx.clone(), on.clone());
        let handle = self.tasks.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let e = Event::Accepted { on: key.clone(), stream: Box::new(stream), origin: None };
                if tx.send(e).await.is_err() {
                    return;
                }
            }
        });
        self.listeners.insert(on, handle);
        Ok(())
    }

    /// Connects to the Unix-domain socket at `path`, for a `direct-streamlocal` channel.
    pub async fn connect_unix(path: &[u8]) -> Result<Box<dyn Socket>, String> {
        let name = String::from_utf8_lossy(path).into_owned();
        let stream = UnixStream::connect(&name).await.map_err(|e| format!("{name}: {e}"))?;
        Ok(Box::new(stream))
    }

    /// Stops the listener of an earlier forward: a TCP one named by the port it bound.
    pub fn cancel(&mut self, on: &Listen) -> bool {
        match self.listeners.remove(on) {
            Some(h) => {
                h.abort();
                unlink(on);
                true
            }
            None => false,
        }
    }

    /// The next event; never resolves while there can be none. A connection accepted by a
    /// forward cancelled since is closed, not opened to the client.
    pub async fn next(&mut self) -> Event {
        loop {
            // Finished tasks leave the set as they go, not when the connection ends.
            while self.tasks.try_join_next().is_some() {}
            match self.rx.recv().await {
                Some(Event::Accepted { on, .. }) if !self.listeners.contains_key(&on) => {}
                Some(e) => return e,
                // We hold a sender ourselves, so the queue never ends.
                None => std::future::pending().await,
            }
        }
    }

    /// An accepted socket waits for the client to confirm channel `channel`.
    pub fn hold(&mut self, channel: u32, stream: Box<dyn Socket>) {
        self.pending.insert(channel, stream);
    }

    /// Whether channel `channel` is one of our opens still waiting for an answer.
    pub fn is_pending(&self, channel: u32) -> bool {
        self.pending.contains_key(&channel)
    }

    /// The client confirmed channel `channel`: its socket starts relaying.
    pub fn start(&mut self, channel: u32) {
        let Some(stream) = self.pending.remove(&channel) else { return };
        let (mut read, mut write) = tokio::io::split(stream);
        let tx = self.tx.clone();
        let reader = self.tasks.spawn(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let n = read.read(&mut buf).await.unwrap_or(0);
                if tx.send(Event::Read { channel, data: buf[..n].to_vec() }).await.is_err() || n == 0 {
                    return;
                }
            }
        });
        let (to_socket, mut from_channel) = mpsc::unbounded_channel::<Vec<u8>>();
        self.tasks.spawn(async move {
            while let Some(data) = from_channel.recv().await {
                let done = data.is_empty();
                if done || write.write_all(&data).await.is_err() {
                    let _ = write.shutdown().await;
                    return;
                }
            }
        });
        self.relays.insert(channel, Relay { to_socket, reader });
    }

    /// The client refused channel `channel`: its socket is closed.
    pub fn refused(&mut self, channel: u32) {
        self.pending.remove(&channel);
    }

    /// Whether channel `channel` relays a socket.
    pub fn relays(&self, channel: u32) -> bool {
        self.relays.contains_key(&channel)
    }

    /// Bytes from the client for the socket of channel `channel` (an empty CHANNEL_DATA is
    /// nothing to write, not an end).
    pub fn write(&mut self, channel: u32, data: Vec<u8>) {
        if let Some(r) = self.relays.get(&channel)
            && !data.is_empty()
        {
            let _ = r.to_socket.send(data);
        }
    }

    /// The client's EOF on channel `channel`: the socket's sending side shuts once what came
    /// before is written.
    pub fn eof(&mut self, channel: u32) {
        if let Some(r) = self.relays.get(&channel) {
            let _ = r.to_socket.send(Vec::new());
        }
    }

    /// Channel `channel` closed: no more reads; the writer finishes what the client sent before
    /// its CLOSE, then shuts the socket (it ends with the connection if the socket never drains).
    pub fn close(&mut self, channel: u32) {
        if let Some(r) = self.relays.remove(&channel) {
            r.reader.abort();
            let _ = r.to_socket.send(Vec::new());
        }
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        for on in self.listeners.keys() {
            unlink(on);
        }
    }
}

/// A Unix-domain listener's socket file outlives its listener: it goes with it.
fn unlink(on: &Listen) {
    if let Listen::Unix { path } = on {
        let _ = std::fs::remove_file(String::from_utf8_lossy(path).as_ref());
    }
}
