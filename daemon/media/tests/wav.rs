//! Loading prompts from WAV files.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotline_media::{Codec, Prompt, WavError, load_prompt};

fn dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("wav-tests")
        .join(test);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, spec: hound::WavSpec, samples: &[i32]) {
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        match spec.sample_format {
            hound::SampleFormat::Float => w.write_sample(s as f32 / 32768.0).unwrap(),
            hound::SampleFormat::Int => w.write_sample(s).unwrap(),
        }
    }
    w.finalize().unwrap();
}

fn spec(sample_rate: u32, channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

const INT: hound::SampleFormat = hound::SampleFormat::Int;

#[test]
fn loads_8k_mono_16bit() {
    let path = dir("ok").join("welcome.wav");
    let pcm: Vec<i16> = (0..12_000)
        .map(|i| ((i * 37) % 20_000 - 10_000) as i16)
        .collect();
    write(
        &path,
        spec(8000, 1, 16, INT),
        &pcm.iter().map(|&s| s as i32).collect::<Vec<_>>(),
    );
    let p = load_prompt(&path).unwrap();
    assert_eq!(p.name(), "welcome");
    assert_eq!(p.duration(), Duration::from_millis(1500));
    let want = Prompt::from_samples("welcome", &pcm);
    assert_eq!(p.encoded(Codec::Pcmu), want.encoded(Codec::Pcmu));
    assert_eq!(p.encoded(Codec::Pcma), want.encoded(Codec::Pcma));
}

#[test]
fn wrong_formats_are_explained() {
    let d = dir("format");
    let cases = [
        ("x.wav", spec(22050, 2, 16, INT), "22050 Hz stereo 16-bit"),
        ("y.wav", spec(8000, 1, 8, INT), "8000 Hz mono 8-bit"),
        ("z.wav", spec(16000, 1, 16, INT), "16000 Hz mono 16-bit"),
        (
            "f.wav",
            spec(8000, 1, 32, hound::SampleFormat::Float),
            "8000 Hz mono 32-bit float",
        ),
        ("m.wav", spec(8000, 6, 16, INT), "8000 Hz 6-channel 16-bit"),
    ];
    for (file, spec, what) in cases {
        let path = d.join(file);
        write(&path, spec, &[0; 12]);
        let err = load_prompt(&path).unwrap_err();
        assert!(matches!(err, WavError::Format(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: {what}; prompts must be 8000 Hz mono 16-bit PCM",
                path.display()
            )
        );
    }
}

#[test]
fn missing_file_names_the_path() {
    let path = dir("missing").join("nope.wav");
    let err = load_prompt(&path).unwrap_err();
    assert!(matches!(err, WavError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", path.display())),
        "{err}"
    );
}

#[test]
fn corrupt_files_name_the_path() {
    let d = dir("corrupt");
    let garbage = d.join("garbage.wav");
    std::fs::write(&garbage, b"this is not a wav file at all, just text").unwrap();
    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    // A valid file cut off in the middle of its data.
    let truncated = d.join("truncated.wav");
    write(&truncated, spec(8000, 1, 16, INT), &[1000; 4000]);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2 + 1]).unwrap();
    for path in [garbage, empty, truncated] {
        let err = load_prompt(&path).unwrap_err();
        assert!(
            matches!(err, WavError::Corrupt { .. }),
            "{}: {err:?}",
            path.display()
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{}: not a valid WAV file: ", path.display())),
            "{err}"
        );
    }
}

#[test]
fn directory_is_an_error_not_a_panic() {
    let d = dir("isdir").join("dir.wav");
    std::fs::create_dir_all(&d).unwrap();
    assert!(load_prompt(&d).is_err());
}

#[test]
fn a_prompt_without_audio_is_refused() {
    let path = dir("silent").join("nothing.wav");
    write(&path, spec(8000, 1, 16, INT), &[]);
    let err = load_prompt(&path).unwrap_err();
    assert!(matches!(err, WavError::Format(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: WAV file has no audio", path.display())
    );
}
