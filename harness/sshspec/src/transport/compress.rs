//! Payload compression (RFC 4253 §6.2): `zlib`, from NEWKEYS on, and OpenSSH's delayed
//! `zlib@openssh.com`, from USERAUTH_SUCCESS on. Each direction is one zlib stream per key epoch,
//! every packet ended with a partial flush so the other side can decompress it alone.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

pub const NONE: &str = "none";
pub const ZLIB: &str = "zlib";
pub const ZLIB_OPENSSH: &str = "zlib@openssh.com";

/// Compression methods the scripted peer speaks, in our default order of preference.
pub const METHODS: &[&str] = &[NONE, ZLIB_OPENSSH, ZLIB];

/// When a negotiated method starts to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Never,
    AtNewKeys,
    AfterAuth,
}

pub fn start(name: &str) -> Option<Start> {
    Some(match name {
        NONE => Start::Never,
        ZLIB => Start::AtNewKeys,
        ZLIB_OPENSSH => Start::AfterAuth,
        _ => return None,
    })
}

pub struct Deflater(Compress);

impl Deflater {
    pub fn new() -> Self {
        Deflater(Compress::new(Compression::new(6), true))
    }

    pub fn compress(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let start_in = self.0.total_in();
        loop {
            let used = (self.0.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            // zlib only fails on misuse (a stream used after an error), which cannot happen here.
            let _ = self.0.compress_vec(&input[used..], &mut out, FlushCompress::Partial);
            let done = (self.0.total_in() - start_in) as usize == input.len();
            // A flush is complete when zlib stopped with room to spare in the output.
            if done && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Inflater(Decompress);

impl Inflater {
    pub fn new() -> Self {
        Inflater(Decompress::new(true))
    }

    /// Decompresses one packet's payload; refuses output beyond `limit` (a zip bomb is the
    /// target's fault, and must not cost us memory).
    pub fn decompress(&mut self, input: &[u8], limit: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity((input.len() * 4).clamp(256, limit));
        let start_in = self.0.total_in();
        loop {
            let used = (self.0.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                if out.len() >= limit {
                    return Err(format!("sent a compressed payload that inflates beyond {limit} bytes"));
                }
                out.reserve((out.len()).min(limit - out.len()).max(256));
            }
            let before = out.len();
            let status = self
                .0
                .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                .map_err(|e| format!("sent a payload that does not inflate: {e}"))?;
            let consumed = (self.0.total_in() - start_in) as usize == input.len();
            match status {
                Status::StreamEnd => return Err("ended its zlib stream inside a key epoch".into()),
                _ if consumed && out.len() < out.capacity() => return Ok(out),
                Status::BufError if out.len() == before && out.len() < out.capacity() => {
                    return Err("sent a compressed payload that stops mid-block".into());
                }
                _ => {}
            }
        }
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// One stream, many packets: each decompresses alone, in order, to what was sent.
        #[test]
        fn packets_round_trip_through_one_stream(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5000), 1..8)) {
            let (mut d, mut i) = (Deflater::new(), Inflater::new());
            for p in &payloads {
                let c = d.compress(p);
                prop_assert_eq!(&i.decompress(&c, 1 << 20).expect("inflates"), p);
            }
        }
    }

    #[test]
    fn a_bomb_is_refused() {
        let mut d = Deflater::new();
        let c = d.compress(&vec![0u8; 1 << 20]);
        assert!(c.len() < 4096);
        assert!(Inflater::new().decompress(&c, 256 * 1024).is_err());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Inflater::new().decompress(b"not zlib at all", 1 << 16).is_err());
    }
}
