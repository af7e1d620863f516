//! Visitor fields signed by the site: HMAC-SHA256 (RFC 2104, the `hmac` crate over the
//! workspace's `sha2`) with the site's secret, in hex, over
//!
//! ```text
//! visitor_key \n timestamp \n customer_id \n email \n name
//! ```
//!
//! `timestamp` is when the site signed, in Unix seconds (decimal). The visitor key and the
//! time are inside the HMAC, so a signature copied from one customer's page neither works
//! for another visitor nor for longer than the site's maximum age. Comparison is constant
//! time (`Mac::verify_slice`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::VisitorField;
use crate::tokens::hex;

type HmacSha256 = Hmac<Sha256>;

/// How far ahead of our clock a site's timestamp may be (its server's clock may run a
/// little fast); anything later is refused, or a signature could be made to last forever.
pub const MAX_SIGNATURE_CLOCK_SKEW_S: i64 = 300;

/// What the site vouches for, with the visitor key it is for and when it signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignedVisitor<'a> {
    pub visitor_key: &'a str,
    /// Unix seconds.
    pub timestamp_s: i64,
    pub customer_id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
}

/// Why signed fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the site has no secret to check signatures with")]
    NoSecret,
    #[error("the site's signature is not 64 hex digits")]
    Malformed,
    #[error("the site's signature does not match these details")]
    Mismatch,
    #[error("the site's signature has expired; reload the page")]
    Expired,
    #[error("the site's signature is dated in the future; check the site's clock")]
    FromTheFuture,
    #[error("the site's signature is for another visitor")]
    OtherVisitor,
    #[error("signed details may not contain line breaks")]
    LineBreak,
}

/// The message the site signs: `visitor_key\ntimestamp\ncustomer_id\nemail\nname` (absent
/// fields are empty).
pub fn canonical_signed_fields(f: &SignedVisitor<'_>) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        f.visitor_key, f.timestamp_s, f.customer_id, f.email, f.name
    )
}

fn mac(secret: &str, f: &SignedVisitor<'_>) -> Result<HmacSha256, SignatureError> {
    // HMAC takes a key of any length (longer ones are hashed first): this never fails.
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::NoSecret)?;
    mac.update(canonical_signed_fields(f).as_bytes());
    Ok(mac)
}

/// The signature a site computes (hex, lower case); for the demo site and tests.
pub fn sign_visitor(secret: &str, f: &SignedVisitor<'_>) -> String {
    mac(secret, f)
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default()
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

/// Checks `signature_hex` against the site's secret for `visitor_key` (the key the
/// request is for) at `now_ms`: the HMAC must match and the timestamp be at most
/// `max_age_s` old (and not from the future). A site without a secret verifies nothing.
pub fn verify_signature(
    secret: &str,
    f: &SignedVisitor<'_>,
    visitor_key: &str,
    signature_hex: &str,
    now_ms: i64,
    max_age_s: i64,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let given = unhex(signature_hex.trim()).ok_or(SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    if f.visitor_key != visitor_key {
        return Err(SignatureError::OtherVisitor);
    }
    // The fields are joined by line breaks: one inside a field would let ("a\nb", "") and
    // ("a", "b\n") share a signature.
    if [f.visitor_key, f.customer_id, f.email, f.name]
        .iter()
        .any(|v| v.contains(['\n', '\r']))
    {
        return Err(SignatureError::LineBreak);
    }
    mac(secret, f)?
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)?;
    // The time is checked after the HMAC: only the site's own timestamps are judged.
    let now_s = now_ms.div_euclid(1000);
    if f.timestamp_s > now_s.saturating_add(MAX_SIGNATURE_CLOCK_SKEW_S) {
        return Err(SignatureError::FromTheFuture);
    }
    if now_s.saturating_sub(f.timestamp_s) > max_age_s {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

/// The fields to mark verified in [`super::NewVisitor::verified`]: the non-empty ones
/// when the signature holds.
pub fn verified_fields(
    secret: &str,
    f: &SignedVisitor<'_>,
    visitor_key: &str,
    signature_hex: &str,
    now_ms: i64,
    max_age_s: i64,
) -> Result<Vec<String>, SignatureError> {
    verify_signature(secret, f, visitor_key, signature_hex, now_ms, max_age_s)?;
    Ok([
        (VisitorField::CustomerId, f.customer_id),
        (VisitorField::Email, f.email),
        (VisitorField::Name, f.name),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(field, _)| field.as_str().to_string())
    .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use super::*;

    fn hmac_hex(key: &[u8], message: &[u8]) -> String {
        let mut m = HmacSha256::new_from_slice(key).unwrap();
        m.update(message);
        hex(&m.finalize().into_bytes())
    }

    #[test]
    fn a_line_break_in_a_field_is_refused_even_when_signed() {
        let now_ms = 1_800_000_000_000;
        let shifted = SignedVisitor {
            visitor_key: "v1",
            timestamp_s: now_ms / 1000,
            customer_id: "42",
            email: "a@example.org\nMallory",
            name: "",
        };
        let sig = sign_visitor("secret", &shifted);
        assert_eq!(
            verify_signature("secret", &shifted, "v1", &sig, now_ms, 86_400),
            Err(SignatureError::LineBreak)
        );
        // It would verify the fields split differently too.
        let split = SignedVisitor {
            email: "a@example.org",
            name: "Mallory\n",
            ..shifted
        };
        assert_eq!(sign_visitor("secret", &split), sig, "the ambiguity itself");
        assert_eq!(
            verify_signature("secret", &split, "v1", &sig, now_ms, 86_400),
            Err(SignatureError::LineBreak)
        );
    }

    #[test]
    fn rfc_4231_vectors() {
        // Test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hmac_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_signed_message_is_documented_one() {
        let f = SignedVisitor {
            visitor_key: "vk-1",
            timestamp_s: 1_700_000_000,
            customer_id: "C-1",
            email: "a@example.com",
            name: "Anna",
        };
        assert_eq!(
            canonical_signed_fields(&f),
            "vk-1\n1700000000\nC-1\na@example.com\nAnna"
        );
        // What a site computes with any HMAC library over that text.
        assert_eq!(
            sign_visitor("k", &f),
            hmac_hex(b"k", b"vk-1\n1700000000\nC-1\na@example.com\nAnna")
        );
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(unhex("00ff10Ab"), Some(vec![0, 255, 16, 171]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
