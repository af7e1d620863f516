//! Call recordings on disk (PRODUCT S2): the WAV files the call session's recordings go
//! to, their repair after a crash, and their deletion when they are older than
//! `recordings.retention_days`.
//!
//! Format: WAV, 8000 Hz, 16-bit linear PCM, mono or stereo (caller left, operator
//! right). G.711 is 8-bit at 8 kHz, so this loses nothing, costs no encoder (no C
//! library, no CPU per call beyond the G.711 table lookup) and plays, with seeking, in
//! every browser's `<audio>`. The price is size: 0.96 MB a minute mono, 1.92 MB stereo,
//! about ten times Opus in Ogg.
//!
//! Written as the call goes: the header's sizes are brought up to date every second
//! ([`FLUSH_EVERY`]), so a crash loses at most that much; a file a crash left
//! unfinished (its row still says `recording`) is repaired at start from its length.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hotline_core::recordings::{NewRecording, RecordingAccess, RecordingStatus};
use hotline_core::store::Store;
use tracing::{info, warn};

use crate::config::Recordings;

/// How often a file's header is brought up to date while it is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
const SAMPLE_RATE: u32 = 8000;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Wav { path: PathBuf, source: hound::Error },
    #[error("{}: not a WAV file this daemon wrote", path.display())]
    NotOurs { path: PathBuf },
}

/// A recording being written.
pub struct RecordingFile {
    pub id: i64,
    /// Relative to the recordings directory (as the row has it).
    pub rel_path: String,
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    flushed_at: Instant,
    /// An error was logged: the rest of the call is not written.
    failed: bool,
}

impl RecordingFile {
    /// Creates `dir/YYYY/MM/DD/<unix ms>-<call id>.wav` (the date in UTC) and its row.
    pub async fn open(
        store: &Store,
        config: &Recordings,
        rec: &NewRecording<'_>,
        now: Instant,
    ) -> Result<RecordingFile, String> {
        let rel_path = relative_path(rec.started_at_ms, rec.call_id);
        let path = config.dir.join(&rel_path);
        let spec = hound::WavSpec {
            channels: if config.stereo { 2 } else { 1 },
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let create = || -> Result<hound::WavWriter<BufWriter<File>>, RecordingError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| RecordingError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let file = File::options()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|source| RecordingError::Io {
                    path: path.clone(),
                    source,
                })?;
            hound::WavWriter::new(BufWriter::with_capacity(64 * 1024, file), spec).map_err(
                |source| RecordingError::Wav {
                    path: path.clone(),
                    source,
                },
            )
        };
        let writer = create().map_err(|e| e.to_string())?;
        let row = NewRecording {
            path: &rel_path,
            ..*rec
        };
        let id = match store.insert_recording(&row).await {
            Ok(id) => id,
            Err(e) => {
                // A file nobody can find is worse than none.
                drop(writer);
                let _ = std::fs::remove_file(&path);
                return Err(format!("storing the recording's row: {e}"));
            }
        };
        Ok(RecordingFile {
            id,
            rel_path,
            path,
            writer,
            flushed_at: now,
            failed: false,
        })
    }

    /// Appends audio; the header follows every [`FLUSH_EVERY`].
    pub fn write(&mut self, pcm: &[i16], now: Instant) {
        if self.failed || pcm.is_empty() {
            return;
        }
        let mut result = pcm.iter().try_for_each(|&s| self.writer.write_sample(s));
        if result.is_ok() && now.duration_since(self.flushed_at) >= FLUSH_EVERY {
            self.flushed_at = now;
            result = self.writer.flush();
        }
        if let Err(e) = result {
            warn!(path = %self.path.display(), "recording NOT written from here on: {e}");
            self.failed = true;
        }
    }

    /// Completes the file; its size in bytes.
    pub fn finish(self) -> Result<u64, RecordingError> {
        let path = self.path;
        self.writer
            .finalize()
            .map_err(|source| RecordingError::Wav {
                path: path.clone(),
                source,
            })?;
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|source| RecordingError::Io { path, source })
    }
}

/// `YYYY/MM/DD/<unix ms>-<call id>.wav`, the call id cut to file-name-safe characters.
fn relative_path(started_at_ms: i64, call_id: &str) -> String {
    let day = chrono::DateTime::from_timestamp_millis(started_at_ms)
        .unwrap_or_default()
        .format("%Y/%m/%d");
    let safe: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{day}/{started_at_ms}-{safe}.wav")
}

/// What [`repair`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Repaired {
    pub duration_ms: i64,
    pub bytes: u64,
}

/// Makes a WAV file a crash interrupted whole: its `data` chunk runs to the end of the
/// file (cut to whole sample frames), and the RIFF and data sizes say so.
pub fn repair(path: &Path) -> Result<Repaired, RecordingError> {
    let io_err = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_ours = || RecordingError::NotOurs {
        path: path.to_path_buf(),
    };
    let mut f = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err)?;
    let len = f.metadata().map_err(io_err)?.len();
    let mut riff = [0u8; 12];
    f.read_exact(&mut riff).map_err(|_| not_ours())?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(not_ours());
    }
    // Walk the chunks to `fmt ` (for the frame size) and `data`.
    let mut block_align = None;
    let mut pos = 12u64;
    let data_start = loop {
        let mut head = [0u8; 8];
        f.seek(SeekFrom::Start(pos)).map_err(io_err)?;
        f.read_exact(&mut head).map_err(|_| not_ours())?;
        let size = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        match &head[0..4] {
            b"data" => break pos + 8,
            b"fmt " => {
                let mut fmt = [0u8; 16];
                f.read_exact(&mut fmt).map_err(|_| not_ours())?;
                block_align = Some(u64::from(u16::from_le_bytes([fmt[12], fmt[13]])));
            }
            _ => {}
        }
        pos += 8 + size + (size & 1);
        if pos >= len {
            return Err(not_ours());
        }
    };
    let block_align = block_align.filter(|&b| b > 0).ok_or_else(not_ours)?;
    let data_len = (len - data_start) / block_align * block_align;
    let data_len32 = u32::try_from(data_len).map_err(|_| not_ours())?;
    let end = data_start + data_len;
    f.set_len(end).map_err(io_err)?;
    let riff_len = u32::try_from(end - 8).map_err(|_| not_ours())?;
    f.seek(SeekFrom::Start(4)).map_err(io_err)?;
    f.write_all(&riff_len.to_le_bytes()).map_err(io_err)?;
    f.seek(SeekFrom::Start(data_start - 4)).map_err(io_err)?;
    f.write_all(&data_len32.to_le_bytes()).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    let frames = data_len / block_align;
    Ok(Repaired {
        duration_ms: i64::try_from(frames * 1000 / u64::from(SAMPLE_RATE)).unwrap_or(i64::MAX),
        bytes: end,
    })
}

/// At start: every recording a crash left unfinished is repaired and closed (or, with
/// its file gone, closed as it is), and the repair is logged.
pub async fn repair_unfinished(store: &Store, config: &Recordings, now_ms: i64) {
    let rows = match store.unfinished_recordings().await {
        Ok(rows) => rows,
        Err(e) => {
            warn!("recordings: cannot list unfinished ones: {e}");
            return;
        }
    };
    for r in rows {
        let path = config.dir.join(&r.path);
        let (duration_ms, bytes, detail) = match repair(&path) {
            Ok(f) => (
                f.duration_ms,
                f.bytes,
                format!("repaired: {} ms", f.duration_ms),
            ),
            Err(e) => (0, 0, format!("could not repair: {e}")),
        };
        info!(id = r.id, call_id = %r.call_id, "recording left unfinished: {detail}");
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if let Err(e) = store
            .finish_recording(r.id, now_ms, duration_ms, bytes, RecordingStatus::Repaired)
            .await
        {
            warn!(id = r.id, "recording NOT closed: {e}");
            continue;
        }
        log_access(
            store,
            None,
            r.id,
            &r.call_id,
            "repair",
            Some(detail),
            now_ms,
        )
        .await;
    }
}

/// Deletes the files of recordings older than the retention, oldest first, and marks
/// their rows purged; each deletion is logged. The number purged.
pub async fn purge_expired(store: &Store, config: &Recordings, now_ms: i64) -> usize {
    if config.retention_days == 0 {
        return 0;
    }
    let cutoff = now_ms - i64::from(config.retention_days) * 86_400_000;
    let mut purged = 0;
    loop {
        let rows = match store.recordings_to_purge(cutoff, 100).await {
            Ok(rows) => rows,
            Err(e) => {
                warn!("recordings: cannot list expired ones: {e}");
                return purged;
            }
        };
        if rows.is_empty() {
            return purged;
        }
        for r in rows {
            let path = config.dir.join(&r.path);
            let detail = match std::fs::remove_file(&path) {
                Ok(()) => format!("older than {} days", config.retention_days),
                Err(e) if e.kind() == io::ErrorKind::NotFound => "file was already gone".into(),
                Err(e) => {
                    // Left as it is: the next round tries again, and the row still
                    // points at the file.
                    warn!(path = %path.display(), "recording NOT deleted: {e}");
                    return purged;
                }
            };
            if let Err(e) = store.mark_recording_purged(r.id, now_ms).await {
                warn!(id = r.id, "recording deleted but NOT marked purged: {e}");
                return purged;
            }
            info!(id = r.id, call_id = %r.call_id, path = %r.path, "recording purged: {detail}");
            log_access(store, None, r.id, &r.call_id, "purge", Some(detail), now_ms).await;
            purged += 1;
        }
    }
}

/// How often expired recordings are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Purges expired recordings now and every [`PURGE_EVERY`].
pub async fn purge_task(store: Store, config: Recordings) {
    loop {
        purge_expired(&store, &config, hotline_core::time::unix_ms()).await;
        tokio::time::sleep(PURGE_EVERY).await;
    }
}

/// One line of the recordings' audit log; a failure to write it is logged.
pub async fn log_access(
    store: &Store,
    user: Option<&str>,
    recording_id: i64,
    call_id: &str,
    action: &str,
    detail: Option<String>,
    at_ms: i64,
) {
    let entry = RecordingAccess {
        at_ms,
        user: user.map(str::to_string),
        recording_id,
        call_id: call_id.to_string(),
        action: action.to_string(),
        detail,
    };
    if let Err(e) = store.log_recording_access(&entry).await {
        warn!(recording_id, action, "recording access NOT logged: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test.
    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hotline-rec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_wav(path: &Path, channels: u16, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn a_file_cut_off_by_a_crash_is_made_whole_from_its_length() {
        let dir = test_dir("cut");
        let path = dir.join("a.wav");
        // Written with its header flushed after 800 frames, then 1600 more and half a
        // frame before the crash: the header still says 800.
        let first: Vec<i16> = (0..1600).map(|i| i as i16).collect();
        write_wav(&path, 2, &first);
        let mut f = File::options().append(true).open(&path).unwrap();
        let more: Vec<u8> = (0..3200i16).flat_map(|s| s.to_le_bytes()).collect();
        f.write_all(&more).unwrap();
        f.write_all(&[1, 2]).unwrap();
        drop(f);

        let fixed = repair(&path).unwrap();
        assert_eq!(fixed.duration_ms, 300); // 2400 frames at 8 kHz
        assert_eq!(fixed.bytes, 44 + 2400 * 4);
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().channels, 2);
        assert_eq!(r.duration(), 2400);
        let got: Vec<i16> = r.into_samples().map(Result::unwrap).collect();
        assert_eq!(&got[..1600], &first[..]);
        assert_eq!(got[1600..], (0..3200).collect::<Vec<i16>>()[..]);
    }

    #[test]
    fn a_whole_file_is_left_as_it_is_and_others_are_refused() {
        let dir = test_dir("whole");
        let path = dir.join("b.wav");
        write_wav(&path, 1, &[5; 8000]);
        let before = std::fs::read(&path).unwrap();
        assert_eq!(
            repair(&path).unwrap(),
            Repaired {
                duration_ms: 1000,
                bytes: 44 + 16000
            }
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);

        let junk = dir.join("c.wav");
        std::fs::write(&junk, b"RIFF\0\0\0\0WAVEjunk").unwrap();
        assert!(matches!(repair(&junk), Err(RecordingError::NotOurs { .. })));
        std::fs::write(&junk, b"").unwrap();
        assert!(matches!(repair(&junk), Err(RecordingError::NotOurs { .. })));
    }

    #[test]
    fn file_names_are_dated_and_safe() {
        assert_eq!(
            relative_path(1_796_000_000_000, "a/b..@c d"),
            "2026/11/30/1796000000000-a_b.._c_d.wav"
        );
    }

    fn config(dir: &Path) -> Recordings {
        Recordings {
            dir: dir.to_path_buf(),
            stereo: false,
            retention_days: 30,
        }
    }

    fn row<'a>(call_id: &'a str, path: &'a str, started_at_ms: i64) -> NewRecording<'a> {
        NewRecording {
            call_id,
            caller: "+36301234567",
            operator: Some("anna"),
            queue: Some("support"),
            path,
            layout: "mono",
            started_by: None,
            started_at_ms,
        }
    }

    #[tokio::test]
    async fn retention_deletes_old_files_only_and_logs_each() {
        let dir = test_dir("purge");
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", dir.join("db").display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let day = 86_400_000;
        let now = 100 * day;
        let mut ids = Vec::new();
        for (name, age_days) in [("old.wav", 31), ("new.wav", 29)] {
            write_wav(&dir.join(name), 1, &[1; 80]);
            let id = store
                .insert_recording(&row(name, name, now - age_days * day))
                .await
                .unwrap();
            store
                .finish_recording(id, now, 10, 204, RecordingStatus::Complete)
                .await
                .unwrap();
            ids.push(id);
        }
        let config = config(&dir);
        assert_eq!(purge_expired(&store, &config, now).await, 1);
        assert!(!dir.join("old.wav").exists());
        assert!(dir.join("new.wav").exists());
        let old = store.recording(ids[0]).await.unwrap().unwrap();
        assert_eq!(
            (old.status, old.purged_at_ms),
            (RecordingStatus::Purged, Some(now))
        );
        let log = store.recording_log(10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (
                log[0].action.as_str(),
                log[0].recording_id,
                log[0].user.as_deref()
            ),
            ("purge", ids[0], None)
        );
        assert_eq!(log[0].detail.as_deref(), Some("older than 30 days"));
        // Nothing more to do; 0 days keeps everything.
        assert_eq!(purge_expired(&store, &config, now).await, 0);
        let keep = Recordings {
            retention_days: 0,
            ..config
        };
        assert_eq!(purge_expired(&store, &keep, now + 1000 * day).await, 0);
    }

    #[tokio::test]
    async fn a_recording_a_crash_left_open_is_repaired_at_start() {
        let dir = test_dir("start");
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", dir.join("db").display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        // The header was last brought up to date at 100 samples; 700 more got written.
        write_wav(&dir.join("crash.wav"), 1, &[7; 100]);
        let mut f = File::options()
            .append(true)
            .open(dir.join("crash.wav"))
            .unwrap();
        f.write_all(&[0u8; 1400]).unwrap();
        drop(f);
        let id = store
            .insert_recording(&row("c1", "crash.wav", 5_000))
            .await
            .unwrap();
        repair_unfinished(&store, &config(&dir), 9_000).await;
        let r = store.recording(id).await.unwrap().unwrap();
        assert_eq!(
            (r.status, r.duration_ms, r.bytes, r.ended_at_ms),
            (
                RecordingStatus::Repaired,
                Some(100),
                Some(44 + 1600),
                Some(9_000)
            )
        );
        assert_eq!(
            hound::WavReader::open(dir.join("crash.wav"))
                .unwrap()
                .duration(),
            800
        );
        let log = store.recording_log(10).await.unwrap();
        assert_eq!(
            (log[0].action.as_str(), log[0].detail.as_deref()),
            ("repair", Some("repaired: 100 ms"))
        );
    }
}
