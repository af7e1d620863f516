//! ITU-T G.711 μ-law and A-law, bit-exact with the ITU-T G.191 reference
//! implementation (which uses one's complement for negative samples, so
//! −1 encodes like 0 with the sign bit cleared). Sun's widely copied g711.c
//! rounds some negative μ-law inputs one step further from zero; A-law and
//! all decoding agree with it.

/// Encodes a 16-bit linear sample as μ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let negative = sample < 0;
    // One's complement keeps the magnitude within i16 for i16::MIN.
    let magnitude = if negative { !sample } else { sample } as i32;
    // 14-bit magnitude plus the bias of 33, clipped to the top of segment 7.
    let biased = ((magnitude >> 2) + 33).min(0x1FFF);
    let mut segment = 1;
    let mut i = biased >> 6;
    while i != 0 {
        segment += 1;
        i >>= 1;
    }
    let high = 8 - segment;
    let low = 0x0F - ((biased >> segment) & 0x0F);
    let code = ((high << 4) | low) as u8;
    if negative { code } else { code | 0x80 }
}

/// Decodes a μ-law byte to a 16-bit linear sample.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Encodes a 16-bit linear sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let negative = sample < 0;
    let mut ix = (if negative { !sample } else { sample } as i32) >> 4;
    if ix > 15 {
        let mut exponent = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            exponent += 1;
        }
        // Drop the implicit leading one, then add the exponent.
        ix -= 16;
        ix += exponent << 4;
    }
    if !negative {
        ix |= 0x80;
    }
    // Even bits are inverted on the wire.
    (ix as u8) ^ 0x55
}

/// Decodes an A-law byte to a 16-bit linear sample.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    if code < 0x80 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_expand(code: u8) -> i16 {
    let ix = (code ^ 0x55) & 0x7F;
    let exponent = (ix >> 4) as i32;
    let mut mantissa = (ix & 0x0F) as i32;
    if exponent > 0 {
        mantissa += 16;
    }
    // Left-justify and add half a quantisation step.
    mantissa = (mantissa << 4) + 8;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    if code > 127 {
        mantissa as i16
    } else {
        -mantissa as i16
    }
}

// Decoding is on the receive path for every packet: a table lookup.
static ULAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
};

static ALAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_encode() {
        // Values from the ITU-T G.191 STL reference (g711.c, ulaw_compress).
        let cases: &[(i16, u8)] = &[
            (0, 0xFF),
            (1, 0xFF),
            (-1, 0x7F),
            (2, 0xFF),
            (-2, 0x7F),
            (3, 0xFF),
            (4, 0xFE),
            // Sun's widely copied g711.c gives 0x7E / 0x72 for these two.
            (-4, 0x7F),
            (-100, 0x73),
            (8, 0xFE),
            (-8, 0x7E),
            (100, 0xF2),
            (1000, 0xCE),
            (-1000, 0x4E),
            (8000, 0xA0),
            (32124, 0x80),
            (32767, 0x80),
            (-32767, 0x00),
            (-32768, 0x00),
        ];
        for &(pcm, code) in cases {
            assert_eq!(linear_to_ulaw(pcm), code, "ulaw({pcm})");
        }
    }

    #[test]
    fn ulaw_reference_decode() {
        let cases: &[(u8, i16)] = &[
            (0xFF, 0),
            (0x7F, 0),
            (0xFE, 8),
            (0x7E, -8),
            (0x80, 32124),
            (0x00, -32124),
            (0x81, 31100),
            (0x01, -31100),
            (0xF0, 120),
            (0xEF, 132),
            (0x8F, 16764),
            (0x90, 15996),
        ];
        for &(code, pcm) in cases {
            assert_eq!(ulaw_to_linear(code), pcm, "ulaw^-1({code:#04x})");
        }
    }

    #[test]
    fn alaw_reference_encode() {
        let cases: &[(i16, u8)] = &[
            (0, 0xD5),
            (1, 0xD5),
            (-1, 0x55),
            (15, 0xD5),
            (16, 0xD4),
            (-16, 0x55),
            (-17, 0x54),
            (100, 0xD3),
            (1000, 0xFA),
            (-1000, 0x7A),
            (32767, 0xAA),
            (-32767, 0x2A),
            (-32768, 0x2A),
        ];
        for &(pcm, code) in cases {
            assert_eq!(linear_to_alaw(pcm), code, "alaw({pcm})");
        }
    }

    #[test]
    fn alaw_reference_decode() {
        let cases: &[(u8, i16)] = &[
            (0xD5, 8),
            (0x55, -8),
            (0xAA, 32256),
            (0x2A, -32256),
            // First entries of the classic A-law expansion table.
            (0x00, -5504),
            (0x01, -5248),
            (0x02, -6016),
            (0x03, -5760),
            (0x80, 5504),
        ];
        for &(code, pcm) in cases {
            assert_eq!(alaw_to_linear(code), pcm, "alaw^-1({code:#04x})");
        }
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            // 0x7F is μ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
            let want = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                want,
                "ulaw {code:#04x}"
            );
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "alaw {code:#04x}"
            );
        }
    }

    #[test]
    fn quantisation_is_monotonic_and_close() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for x in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(x));
            let a = alaw_to_linear(linear_to_alaw(x));
            assert!(u >= prev_u, "ulaw not monotonic at {x}");
            assert!(a >= prev_a, "alaw not monotonic at {x}");
            prev_u = u;
            prev_a = a;
            // Error stays within half a step (steps double per segment, ~1/16 of
            // the magnitude); the ends clip at ±32124 / ±32256.
            let bound = (x as i32).abs() / 32 + 16;
            let (x32, u32_, a32) = (x as i32, u as i32, a as i32);
            if x32.abs() <= 32124 {
                assert!((u32_ - x32).abs() <= bound, "ulaw {x} -> {u}");
            }
            if x32.abs() <= 32256 {
                assert!((a32 - x32).abs() <= bound, "alaw {x} -> {a}");
            }
        }
    }

    #[test]
    fn sign_symmetry() {
        for code in 0..=127u8 {
            assert_eq!(ulaw_to_linear(code), -ulaw_to_linear(code | 0x80));
            assert_eq!(alaw_to_linear(code), -alaw_to_linear(code | 0x80));
        }
    }
}
