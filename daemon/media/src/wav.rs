//! Prompts: WAV files loaded once at start, pre-encoded in both codecs and
//! shared by every call, so playing one only copies bytes. [`read_pcm`] is
//! the one reader of prompt files: `hotline flow check` uses it too, so a
//! prompt the check accepts is one the daemon plays.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::Codec;

/// Sample rate of every prompt and of G.711.
pub const SAMPLE_RATE: u32 = 8000;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a WAV file, or a damaged or truncated one.
    #[error("{}: not a valid WAV file: {source}", path.display())]
    Corrupt { path: PathBuf, source: hound::Error },
    /// A valid WAV file in a format prompts can't use, or with no audio; the message
    /// says what it is.
    #[error("{0}")]
    Format(String),
}

/// Why a WAV file's contents are not a prompt: no path, so the flow checker
/// and [`load_prompt`] can each say where it came from.
#[derive(Debug, thiserror::Error)]
pub enum PcmError {
    /// Not a WAV file, or a damaged or truncated one.
    #[error("not a valid WAV file: {0}")]
    Corrupt(#[from] hound::Error),
    /// A valid WAV file in another format, described ("22050 Hz stereo 16-bit").
    #[error("{0}; prompts must be 8000 Hz mono 16-bit PCM")]
    Format(String),
    /// A valid 8000 Hz mono 16-bit file with no samples: a prompt that plays nothing is
    /// a mistake (a failed conversion), not a pause.
    #[error("WAV file has no audio")]
    Empty,
}

/// Reads a whole prompt: 8000 Hz, mono, 16-bit integer PCM (plain or
/// WAVE_FORMAT_EXTENSIBLE), at least one sample, every sample present.
pub fn read_pcm(wav: impl Read) -> Result<Vec<i16>, PcmError> {
    let reader = hound::WavReader::new(wav)?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(PcmError::Format(describe(&spec)));
    }
    let pcm = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()?;
    if pcm.is_empty() {
        return Err(PcmError::Empty);
    }
    Ok(pcm)
}

/// An audio prompt, cheap to clone (the audio is shared).
#[derive(Clone)]
pub struct Prompt {
    name: Arc<str>,
    pcmu: Arc<[u8]>,
    pcma: Arc<[u8]>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .field("duration", &self.duration())
            .finish()
    }
}

impl Prompt {
    /// A prompt from 8 kHz mono 16-bit samples.
    pub fn from_samples(name: &str, pcm: &[i16]) -> Prompt {
        let mut pcmu = Vec::with_capacity(pcm.len());
        Codec::Pcmu.encode(pcm, &mut pcmu);
        let mut pcma = Vec::with_capacity(pcm.len());
        Codec::Pcma.encode(pcm, &mut pcma);
        Prompt {
            name: name.into(),
            pcmu: pcmu.into(),
            pcma: pcma.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prompt in `codec`, one byte per sample.
    pub fn encoded(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }

    pub fn samples(&self) -> usize {
        self.pcmu.len()
    }

    pub fn duration(&self) -> Duration {
        // 125 µs per sample at 8 kHz: exact.
        Duration::from_micros(self.pcmu.len() as u64 * 125)
    }
}

/// Loads a prompt ([`read_pcm`]). Its name is the file stem.
pub fn load_prompt(path: &Path) -> Result<Prompt, WavError> {
    let file = File::open(path).map_err(|source| WavError::Io {
        path: path.to_owned(),
        source,
    })?;
    let pcm = read_pcm(BufReader::new(file)).map_err(|e| match e {
        PcmError::Corrupt(source) => WavError::Corrupt {
            path: path.to_owned(),
            source,
        },
        PcmError::Format(_) | PcmError::Empty => {
            WavError::Format(format!("{}: {e}", path.display()))
        }
    })?;
    let name = match path.file_stem() {
        Some(stem) => stem.to_string_lossy().into_owned(),
        None => path.display().to_string(),
    };
    Ok(Prompt::from_samples(&name, &pcm))
}

/// "22050 Hz stereo 16-bit", "8000 Hz mono 32-bit float".
fn describe(spec: &hound::WavSpec) -> String {
    let channels = match spec.channels {
        1 => "mono".to_owned(),
        2 => "stereo".to_owned(),
        n => format!("{n}-channel"),
    };
    let format = match spec.sample_format {
        hound::SampleFormat::Int => "",
        hound::SampleFormat::Float => " float",
    };
    format!(
        "{} Hz {channels} {}-bit{format}",
        spec.sample_rate, spec.bits_per_sample
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_samples_encodes_both_codecs() {
        let p = Prompt::from_samples("hello", &[0, 1000, -1000]);
        assert_eq!(p.name(), "hello");
        assert_eq!(p.encoded(Codec::Pcmu), &[0xFF, 0xCE, 0x4E]);
        assert_eq!(p.encoded(Codec::Pcma), &[0xD5, 0xFA, 0x7A]);
        assert_eq!(p.samples(), 3);
        assert_eq!(p.duration(), Duration::from_micros(375));
    }

    #[test]
    fn duration_is_exact() {
        let p = Prompt::from_samples("x", &vec![0; 8000 * 600]);
        assert_eq!(p.duration(), Duration::from_secs(600));
    }

    #[test]
    fn clones_share_audio() {
        let p = Prompt::from_samples("x", &[1, 2, 3]);
        let q = p.clone();
        assert!(std::ptr::eq(
            p.encoded(Codec::Pcmu).as_ptr(),
            q.encoded(Codec::Pcmu).as_ptr()
        ));
    }

    #[test]
    fn describes_formats() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 22050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        assert_eq!(describe(&spec), "22050 Hz stereo 16-bit");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        assert_eq!(describe(&spec), "8000 Hz mono 32-bit float");
    }
}
