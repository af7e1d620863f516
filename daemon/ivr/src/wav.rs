//! Just enough of the WAV header to tell an admin at load time, rather than
//! mid-call, that a prompt is not in the format the media engine plays.

pub(crate) const RATE: u32 = 8000;

/// Checks a RIFF/WAVE header is 8000 Hz mono 16-bit PCM with some audio;
/// returns how long it plays, in milliseconds.
pub(crate) fn check_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file (no RIFF/WAVE header)".to_owned());
    }
    let mut fmt = None;
    let mut data_len = None;
    let mut pos = 12usize;
    while let Some(body_start) = pos.checked_add(8)
        && let Some(header) = bytes.get(pos..body_start)
    {
        let id = &header[0..4];
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if id == b"fmt " {
            fmt = bytes.get(body_start..body_start.saturating_add(16.min(len)));
        } else if id == b"data" {
            // Some writers leave the length at 0 or max when streaming; the
            // bytes present are what counts.
            data_len = Some(len.min(bytes.len().saturating_sub(body_start)));
            break;
        }
        // Chunks are padded to even length.
        pos = body_start.saturating_add(len).saturating_add(len & 1);
    }
    let fmt = match fmt {
        Some(f) if f.len() >= 16 => f,
        _ => return Err("WAV file has no format chunk".to_owned()),
    };
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let format = u16_at(0);
    let channels = u16_at(2);
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let bits = u16_at(14);
    // 0xFFFE (extensible) is accepted: some tools write it for plain PCM.
    if !matches!(format, 1 | 0xFFFE) || channels != 1 || rate != RATE || bits != 16 {
        return Err(format!(
            "WAV is {rate} Hz, {channels} channel(s), {bits}-bit (format {format}); \
             prompts must be {RATE} Hz mono 16-bit PCM (see prompts/make-prompts.sh)"
        ));
    }
    match data_len {
        // 2 bytes per sample.
        Some(n) if n >= 2 => Ok((n / 2) as u64 * 1000 / u64::from(RATE)),
        _ => Err("WAV file has no audio data".to_owned()),
    }
}

/// A valid prompt: `ms` of silence. For tests here and in other crates.
pub fn silent_wav(ms: u32) -> Vec<u8> {
    let data_len = RATE / 1000 * ms * 2;
    let mut v = Vec::with_capacity(44 + data_len as usize);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&RATE.to_le_bytes());
    v.extend_from_slice(&(RATE * 2).to_le_bytes()); // byte rate
    v.extend_from_slice(&2u16.to_le_bytes()); // block align
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.resize(44 + data_len as usize, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_own_output() {
        assert_eq!(check_header(&silent_wav(100)), Ok(100));
    }

    #[test]
    fn rejects_wrong_format() {
        let mut w = silent_wav(100);
        w[24..28].copy_from_slice(&44100u32.to_le_bytes());
        assert!(check_header(&w).unwrap_err().contains("44100 Hz"));
        assert!(check_header(b"hello").is_err());
        assert!(check_header(&silent_wav(0)).is_err());
        assert!(check_header(&silent_wav(100)[..30]).is_err());
    }
}
