//! Visitor fields signed by the site: HMAC-SHA256 (RFC 2104) over
//! `customer_id\nemail\nname` with the site's secret, in hex.
//!
//! HMAC is written out here over the `sha2` the workspace already has (the `hmac` crate
//! in the lock file is built for another `digest` version); the tests hold it to the RFC
//! 4231 vectors. The signature is compared in constant time.

use sha2::{Digest, Sha256};

use super::{VisitorField, hex};

const BLOCK: usize = 64;

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        let digest = Sha256::digest(key);
        for (slot, b) in k.iter_mut().zip(digest.iter()) {
            *slot = *b;
        }
    } else {
        for (slot, b) in k.iter_mut().zip(key) {
            *slot = *b;
        }
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// What the site signs: `customer_id\nemail\nname` (absent fields are empty).
pub fn canonical_signed_fields(customer_id: &str, email: &str, name: &str) -> String {
    format!("{customer_id}\n{email}\n{name}")
}

/// The signature a site computes (hex, lower case); for the demo site and tests.
pub fn sign_visitor(secret: &str, customer_id: &str, email: &str, name: &str) -> String {
    hex(&hmac_sha256(
        secret.as_bytes(),
        canonical_signed_fields(customer_id, email, name).as_bytes(),
    ))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// Equal lengths are compared without an early exit, so the time taken doesn't tell how
/// much of a forged signature was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether `signature_hex` is the site's HMAC-SHA256 of the fields. A site without a
/// secret verifies nothing.
pub fn verify_signature(
    secret: &str,
    customer_id: &str,
    email: &str,
    name: &str,
    signature_hex: &str,
) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Some(given) = unhex(signature_hex.trim()) else {
        return false;
    };
    let expected = hmac_sha256(
        secret.as_bytes(),
        canonical_signed_fields(customer_id, email, name).as_bytes(),
    );
    constant_time_eq(&expected, &given)
}

/// The fields to mark verified in [`super::NewVisitor::verified`]: the non-empty ones
/// when the signature holds, none otherwise.
pub fn verified_fields(
    secret: &str,
    customer_id: &str,
    email: &str,
    name: &str,
    signature_hex: &str,
) -> Vec<String> {
    if !verify_signature(secret, customer_id, email, name, signature_hex) {
        return Vec::new();
    }
    [
        (VisitorField::CustomerId, customer_id),
        (VisitorField::Email, email),
        (VisitorField::Name, name),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(f, _)| f.as_str().to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_vectors() {
        // Test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 1: a 20-byte key.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(unhex("00ff10Ab"), Some(vec![0, 255, 16, 171]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
