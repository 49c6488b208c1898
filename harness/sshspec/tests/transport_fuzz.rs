//! Hostile input on the transport's decoder, as a proptest over real sockets: whatever a server
//! sends after its identification line (noise, or packets with plausible lengths around arbitrary
//! payloads, in arbitrary pieces), the transport never panics, never buffers beyond its packet
//! limit, and every read ends: a message, or an error naming the target, within the deadline.

use proptest::prelude::*;
use sshspec::transport::{MAX_PACKET, Transport, TransportError};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// What the hostile server sends after its banner.
#[derive(Debug, Clone)]
enum Feed {
    Noise(Vec<u8>),
    /// Unencrypted packets: (length field, padding length field, payload), framed as given.
    Packets(Vec<(u32, u8, Vec<u8>)>),
}

fn feed() -> impl Strategy<Value = Feed> {
    let len = prop_oneof![0u32..64, 5u32..400, Just(u32::MAX), Just(MAX_PACKET as u32 + 1), any::<u32>()];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2000).prop_map(Feed::Noise),
        proptest::collection::vec((len, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 1..8)
            .prop_map(Feed::Packets),
    ]
}

fn bytes(f: &Feed) -> Vec<u8> {
    let mut out = b"SSH-2.0-hostile\r\n".to_vec();
    match f {
        Feed::Noise(n) => out.extend_from_slice(n),
        Feed::Packets(ps) => {
            for (len, pad, payload) in ps {
                out.extend_from_slice(&len.to_be_bytes());
                out.push(*pad);
                out.extend_from_slice(payload);
            }
        }
    }
    out
}

async fn exercise(data: Vec<u8>, chunk: usize) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            for piece in data.chunks(chunk.max(1)) {
                if s.write_all(piece).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            // Then stay silent a little: the reader must end by its deadline, not by our close.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut t = Transport::connect(addr, None, deadline + Duration::from_secs(5), Default::default())
        .await
        .map_err(|e| e.to_string())?;
    t.send_version("SSH-2.0-sshspec_fuzz", &[]).await.map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let end = match t.read_version(deadline).await {
        Err(e) => e,
        Ok(_) => loop {
            match t.recv(deadline).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        },
    };
    server.abort();
    if started.elapsed() > Duration::from_secs(2) {
        return Err(format!("the read took {:?}", started.elapsed()));
    }
    match end {
        TransportError::Ours(m) => Err(format!("blamed the harness for the target's bytes: {m}")),
        TransportError::Closed { .. } | TransportError::Timeout { .. } | TransportError::Target(_) => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn arbitrary_server_bytes_end_in_a_verdict(f in feed(), chunk in 1usize..64) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let r = rt.block_on(exercise(bytes(&f), chunk));
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}
