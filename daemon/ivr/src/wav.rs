//! Prompts are checked at load time, rather than found wrong mid-call, with
//! the reader playback uses ([`hotline_media::read_pcm`]): a prompt that
//! `hotline flow check` accepts is one the daemon plays.

use hotline_media::wav::SAMPLE_RATE as RATE;

/// Checks a prompt file's contents; returns how long it plays, in milliseconds.
pub(crate) fn check_prompt(bytes: &[u8]) -> Result<u64, String> {
    let pcm = hotline_media::read_pcm(bytes).map_err(|e| match e {
        hotline_media::PcmError::Format(_) => {
            format!("{e} (see prompts/make-prompts.sh)")
        }
        _ => e.to_string(),
    })?;
    Ok(pcm.len() as u64 * 1000 / u64::from(RATE))
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
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use super::*;

    #[test]
    fn accepts_own_output() {
        assert_eq!(check_prompt(&silent_wav(100)), Ok(100));
        // What playback makes of the same bytes.
        assert_eq!(
            hotline_media::read_pcm(&silent_wav(100)[..]).unwrap().len(),
            800
        );
    }

    #[test]
    fn rejects_what_playback_rejects() {
        let mut w = silent_wav(100);
        w[24..28].copy_from_slice(&44100u32.to_le_bytes());
        w[28..32].copy_from_slice(&88200u32.to_le_bytes()); // byte rate
        assert_eq!(
            check_prompt(&w).unwrap_err(),
            "44100 Hz mono 16-bit; prompts must be 8000 Hz mono 16-bit PCM \
             (see prompts/make-prompts.sh)"
        );
        assert!(
            check_prompt(b"hello")
                .unwrap_err()
                .starts_with("not a valid WAV file: ")
        );
        assert_eq!(
            check_prompt(&silent_wav(0)).unwrap_err(),
            "WAV file has no audio"
        );
        // Cut off inside the audio: the header promises samples that are not there,
        // and playback would fail on them.
        let w = silent_wav(100);
        for cut in [30, 44 + 100] {
            let err = check_prompt(&w[..cut]).unwrap_err();
            assert!(err.starts_with("not a valid WAV file: "), "{cut}: {err}");
            assert!(hotline_media::read_pcm(&w[..cut]).is_err());
        }
    }
}
