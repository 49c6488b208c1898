//! Finite-field Diffie-Hellman: the fixed MODP groups (RFC 4253 §8, RFC 8268) and group exchange
//! (RFC 4419). Arithmetic is the `rsa` crate's BigUint (num-bigint-dig), already in the build for
//! RSA host keys; it is not constant-time, which a test client can afford.

use rand::RngCore;
use rsa::BigUint;
use sshspec_wire::codec::put_mpint_unsigned;

/// Our private exponent's size: 512 bits is twice the strength of the largest group's hash, as
/// RFC 4419 §6.2 advises, and keeps an 8192-bit exchange to milliseconds.
const EXPONENT_BYTES: usize = 64;

/// The min/n/max of SSH_MSG_KEX_DH_GEX_REQUEST as sent, or the lone n of the old request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GexRequest {
    pub min: Option<u32>,
    pub n: u32,
    pub max: Option<u32>,
}

impl GexRequest {
    /// What OpenSSH's client asks for with a 128-bit cipher: at least 2048 bits, 3072 preferred.
    pub const DEFAULT: GexRequest = GexRequest { min: Some(2048), n: 3072, max: Some(8192) };

    /// RFC 4419 §3: H covers min || n || max, or n alone for the old request.
    pub fn encode_for_hash(&self, out: &mut Vec<u8>) {
        match (self.min, self.max) {
            (Some(min), Some(max)) => {
                for v in [min, self.n, max] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            _ => out.extend_from_slice(&self.n.to_be_bytes()),
        }
    }

    /// Whether a group of `bits` is one the request allows (RFC 4419 §3: min <= bits <= max).
    pub fn allows(&self, bits: usize) -> bool {
        self.min.is_none_or(|m| bits >= m as usize) && self.max.is_none_or(|m| bits <= m as usize)
    }
}

pub struct DhSecret {
    p: BigUint,
    x: BigUint,
}

impl DhSecret {
    /// A secret in one of the fixed groups (generator 2); returns it and e = 2^x mod p as an mpint body.
    pub fn fixed(p_hex: &str) -> (Self, Vec<u8>) {
        // The constants are checked by the tests below, so parsing cannot fail.
        let p = BigUint::parse_bytes(p_hex.as_bytes(), 16).unwrap_or_default();
        Self::with(p, BigUint::from(2u32))
    }

    /// A secret in the group the server chose; `Err` if the group is unusable (the target's fault).
    pub fn from_group(p: &[u8], g: &[u8]) -> Result<(Self, Vec<u8>), String> {
        let (pv, gv) = (positive(p, "p")?, positive(g, "g")?);
        if pv.bits() < 512 || p.last().is_none_or(|b| b & 1 == 0) {
            return Err(format!(
                "sent a group exchange prime of {} bits that is not an odd number of 512 bits or more",
                pv.bits()
            ));
        }
        let one = BigUint::from(1u32);
        if gv <= one || gv >= &pv - &one {
            return Err(format!("sent a generator g = {} outside 2..p-2 (RFC 4419 §3)", hex::encode(g)));
        }
        Ok(Self::with(pv, gv))
    }

    fn with(p: BigUint, g: BigUint) -> (Self, Vec<u8>) {
        let mut bytes = [0u8; EXPONENT_BYTES];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes[0] |= 0x80;
        let x = BigUint::from_bytes_be(&bytes);
        let e = g.modpow(&x, &p);
        (DhSecret { p, x }, mpint_body(&e))
    }

    /// K = f^x mod p as an mpint. RFC 4253 §8: f outside [1, p-1] MUST NOT be accepted; 1 and
    /// p-1 give a trivial K, so they are refused too.
    pub fn shared(&self, f: &[u8]) -> Result<Vec<u8>, String> {
        let fv = positive(f, "f")?;
        let one = BigUint::from(1u32);
        if fv <= one || fv >= &self.p - &one {
            return Err(format!("sent f outside 2..p-2 (RFC 4253 §8), {} bytes: {}", f.len(), short(f)));
        }
        let k = fv.modpow(&self.x, &self.p);
        let mut out = Vec::with_capacity(self.p.bits() / 8 + 6);
        put_mpint_unsigned(&mut out, &k.to_bytes_be());
        Ok(out)
    }
}

/// The bits of a group's prime, from its mpint body.
pub fn bits(p: &[u8]) -> usize {
    BigUint::from_bytes_be(p).bits()
}

/// An mpint body that must hold a positive number, minimally encoded (RFC 4251 §5: a zero byte
/// only in front of a byte with its top bit set).
fn positive(b: &[u8], name: &str) -> Result<BigUint, String> {
    if b.first().is_some_and(|&x| x & 0x80 != 0) {
        return Err(format!("sent a negative mpint for {name}: {}", short(b)));
    }
    if let [0, next, ..] = b
        && next & 0x80 == 0
    {
        return Err(format!(
            "sent an mpint for {name} with an unnecessary leading zero byte (RFC 4251 §5): {}",
            short(b)
        ));
    }
    Ok(BigUint::from_bytes_be(b))
}

fn short(b: &[u8]) -> String {
    if b.len() <= 32 { hex::encode(b) } else { format!("{}...", hex::encode(&b[..32])) }
}

/// The mpint body (RFC 4251 §5) of a non-negative number: big-endian, a zero byte before a set top bit.
fn mpint_body(v: &BigUint) -> Vec<u8> {
    let mut b = v.to_bytes_be();
    if b == [0] {
        return Vec::new();
    }
    if b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    b
}

/// Whether `p` (big-endian) is a safe prime: p = 2q + 1 with p and q prime (RFC 4419 §3). q gets
/// ten rounds of Miller-Rabin with random bases (a composite passes with odds under 4^-10); with q
/// prime, 2^(p-1) = 1 (mod p) proves p prime (Pocklington: p - 1 = 2q and 2^2 != 1), so p costs
/// one exponentiation. Small factors are ruled out first, which ends most non-primes at once.
pub fn is_safe_prime(p: &[u8]) -> bool {
    let p = BigUint::from_bytes_be(p);
    if p < BigUint::from(7u32) {
        return p == BigUint::from(5u32);
    }
    let q = &p >> 1usize;
    let (one, two) = (BigUint::from(1u32), BigUint::from(2u32));
    is_odd(&p)
        && no_small_factor(&p)
        && no_small_factor(&q)
        && probably_prime(&q, 10)
        && two.modpow(&(&p - &one), &p) == one
}

fn is_odd(n: &BigUint) -> bool {
    n.to_bytes_le().first().is_some_and(|b| b & 1 == 1)
}

/// No odd number from 3 to 999 divides `n`, unless it is `n` itself (dividing by the composites
/// too changes nothing: their prime factors are in the range, and a composite `n` below 1000 that
/// slips through is left to Miller-Rabin).
fn no_small_factor(n: &BigUint) -> bool {
    let zero = BigUint::from(0u32);
    (3u32..1000).step_by(2).map(BigUint::from).all(|d| *n == d || n % &d != zero)
}

fn probably_prime(n: &BigUint, rounds: usize) -> bool {
    let (one, two, three) = (BigUint::from(1u32), BigUint::from(2u32), BigUint::from(3u32));
    if *n <= three {
        return *n >= two;
    }
    if !is_odd(n) {
        return false;
    }
    let n1 = n - &one;
    let mut d = n1.clone();
    let mut s = 0u32;
    while !is_odd(&d) {
        d >>= 1usize;
        s += 1;
    }
    let bytes = n.to_bytes_be().len();
    let mut rng = rand::thread_rng();
    'rounds: for _ in 0..rounds {
        // A base in [2, n-2].
        let mut buf = vec![0u8; bytes + 8];
        rng.fill_bytes(&mut buf);
        let a = BigUint::from_bytes_be(&buf) % (n - &three) + &two;
        let mut x = a.modpow(&d, n);
        if x == one || x == n1 {
            continue;
        }
        for _ in 1..s {
            x = x.modpow(&two, n);
            if x == n1 {
                continue 'rounds;
            }
        }
        return false;
    }
    true
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::modp;
    use super::*;

    /// A 512-bit safe prime is too slow to find in a test; the generation tests only need an odd
    /// modulus of the right shape, so 2^521 - 1 (a Mersenne prime) serves.
    pub fn small_safe_prime() -> Vec<u8> {
        let p = (BigUint::from(1u32) << 521usize) - BigUint::from(1u32);
        mpint_body(&p)
    }

    /// floor(pi * 2^bits) by Machin's formula, pi = 16 atan(1/5) - 4 atan(1/239), with guard bits.
    fn pi_fixed(bits: usize) -> BigUint {
        let guard = 64;
        let one = BigUint::from(1u32) << (bits + guard);
        let atan_inv = |x: u32| {
            let (mut pos, mut neg) = (BigUint::from(0u32), BigUint::from(0u32));
            let x2 = BigUint::from(x * x);
            let mut power = &one / BigUint::from(x);
            let mut k = 0u32;
            while power > BigUint::from(0u32) {
                let term = &power / BigUint::from(2 * k + 1);
                if k.is_multiple_of(2) {
                    pos += term
                } else {
                    neg += term
                }
                power /= &x2;
                k += 1;
            }
            pos - neg
        };
        (BigUint::from(16u32) * atan_inv(5) - BigUint::from(4u32) * atan_inv(239)) >> guard
    }

    /// RFC 2409 §6.2 and RFC 3526 §§3-7 define each prime as
    /// 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) pi) + k); recompute them from that.
    #[test]
    fn modp_primes_follow_the_rfc_formula() {
        let pi = pi_fixed(8192);
        for (hex, n, k) in [
            (modp::GROUP1, 1024usize, 129093u32),
            (modp::GROUP14, 2048, 124476),
            (modp::GROUP15, 3072, 1690314),
            (modp::GROUP16, 4096, 240904),
            (modp::GROUP17, 6144, 929484),
            (modp::GROUP18, 8192, 4743158),
        ] {
            let one = BigUint::from(1u32);
            let floor = &pi >> (8192 - (n - 130));
            let p = (&one << n) - (&one << (n - 64)) - &one + ((floor + BigUint::from(k)) << 64usize);
            assert_eq!(BigUint::parse_bytes(hex.as_bytes(), 16), Some(p), "the {n}-bit group");
        }
    }

    #[test]
    fn both_sides_agree_and_bad_f_is_refused() {
        let (a, e) = DhSecret::fixed(modp::GROUP14);
        let (b, f) = DhSecret::fixed(modp::GROUP14);
        assert_eq!(a.shared(&f).expect("f in range"), b.shared(&e).expect("e in range"));
        assert!(a.shared(&[1]).is_err(), "f = 1");
        assert!(a.shared(&[]).is_err(), "f = 0");
        assert!(a.shared(&[0x80, 1]).is_err(), "a negative f");
        let p_minus_1 =
            mpint_body(&(BigUint::parse_bytes(modp::GROUP14.as_bytes(), 16).expect("hex") - BigUint::from(1u32)));
        assert!(a.shared(&p_minus_1).is_err(), "f = p-1");
    }

    #[test]
    fn group_exchange_checks_the_group() {
        let p = small_safe_prime();
        assert!(DhSecret::from_group(&p, &[2]).is_ok());
        assert!(DhSecret::from_group(&p, &[1]).is_err(), "g = 1");
        assert!(DhSecret::from_group(&[0x0f, 0xff], &[2]).is_err(), "a tiny p");
        let r = GexRequest::DEFAULT;
        assert!(r.allows(2048) && r.allows(8192) && !r.allows(1024) && !r.allows(8193));
        let mut h = Vec::new();
        GexRequest { min: None, n: 2048, max: None }.encode_for_hash(&mut h);
        assert_eq!(h, 2048u32.to_be_bytes());
    }
}
