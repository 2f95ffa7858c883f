//! The writer: one thread a process, off the request path. It takes the queued events in
//! batches (what gathered in the queue, at most one batch every 100 ms), chains and writes each
//! batch, 512 events a write, with one `fsync` (so a crash loses at most the batch being
//! written and the one gathering, well under a second of calls), rolls over to a new file at
//! each UTC day, and closes the file (a closing record) on rollover and shutdown.
//!
//! When a write of a batch fails (a full disk), the whole pieces written before it are kept,
//! once synced; the rest is cut back off the file (no part line is left), the chain goes back
//! to the last line kept, and the failure is counted. With `--audit-overflow block` the rest is
//! retried until it is written, health says NOT_SERVING meanwhile (calls are refused rather
//! than answered unaudited), and both recover when a write succeeds; with `drop` the rest is
//! dropped and counted. A write that does not return at all is the watchdog's (`health`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use metrics::Counter;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::chain::{Chain, GENESIS};
use super::event::{Event, TimeText};
use super::file::{self, CLOSE, RECORD, RECOVERED};
use super::health::{Turn, WriterHealth};
use super::metrics::AuditMetrics;
use super::retention;
use super::{AuditError, AuditSettings, Overflow};

/// The most events one write takes: more than 100 ms of calls at the load benchmark's rate, so
/// that a saturated writer still writes and syncs about once a gathering.
const BATCH: usize = 16_384;
/// The events of a batch made into lines and written at a time: about 200 KiB, which stays in
/// the CPU's cache from formatting to the kernel's copy.
const PIECE: usize = 512;
/// The least time from one batch to the next. A writer woken for every event would cost each
/// call a thread wake-up and the disk an `fsync`; gathering events this long caps both at 10 a
/// second under load (each `fsync` cost the writer about 80 µs of CPU on the benchmark's
/// host), and a crash still loses well under a second.
const GATHER: Duration = Duration::from_millis(100);
/// The wait before a failed write is tried again.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// What the request path sends the writer.
// Events unboxed: `Close` is sent once a process, and boxing would cost every call an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Message {
    Event(Event),
    /// Write what came before, close the file, stop.
    Close,
}

/// The file being written.
struct Open {
    /// Its UTC day, a [`file::day_number`].
    day: u64,
    file: File,
    /// Its length: where a failed write is cut back to.
    len: u64,
    events: u64,
}

pub(super) struct Writer {
    dir: PathBuf,
    replica: String,
    chain: Chain,
    overflow: Overflow,
    /// The hash of the last line written.
    prev: String,
    /// The lines being written (a piece of a batch, or a record), kept for its capacity.
    lines: Vec<u8>,
    times: TimeText,
    open: Option<Open>,
    metrics: AuditMetrics,
    /// Told when each write begins and ends: health follows it with `--audit-overflow block`.
    healthy: WriterHealth,
    /// Set at shutdown: a write still failing then is given up.
    closing: Arc<AtomicBool>,
    retention: Duration,
    /// The retention pass under way, on a thread of its own: verifying old files can take a
    /// while, and writing must not wait for it.
    pruning: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// The writer of `replica`'s files in `dir`, taking up the chain where its newest file
    /// ends: a part line a crash left is cut off (and the cut recorded), a file of an earlier
    /// day left open is closed.
    ///
    /// Taking up is watched as a write is: a volume that hangs here would otherwise keep the
    /// replica from serving without a word in its log.
    pub(super) fn resume(
        settings: &AuditSettings,
        metrics: AuditMetrics,
        healthy: WriterHealth,
        closing: Arc<AtomicBool>,
    ) -> Result<Self, AuditError> {
        healthy.writing(0);
        let mut writer = Self {
            dir: settings.dir.clone(),
            replica: settings.replica.clone(),
            chain: Chain::new(settings.hmac_key.clone()),
            overflow: settings.overflow,
            retention: settings.retention,
            pruning: None,
            prev: GENESIS.to_owned(),
            lines: Vec::new(),
            times: TimeText::default(),
            open: None,
            metrics,
            healthy,
            closing,
        };
        let taken_up = writer.take_up();
        if writer.healthy.written(taken_up.is_ok()) == Turn::Recovered {
            tracing::info!(dir = %writer.dir.display(), "the audit directory answered; the trail is taken up");
        }
        taken_up.map(|()| writer)
    }

    /// [`Self::resume`]'s reading of the directory, and the cut and close it may need.
    fn take_up(&mut self) -> Result<(), AuditError> {
        let dir = &self.dir.clone();
        let failed = |error: std::io::Error| AuditError::Dir(dir.clone(), error.to_string());
        std::fs::create_dir_all(dir).map_err(failed)?;
        let files: Vec<_> = file::list(dir)
            .map_err(failed)?
            .into_iter()
            .filter(|f| f.replica == self.replica)
            .collect();
        let Some(newest) = files.last() else {
            return Ok(());
        };
        let tail = Tail::read(&newest.path).map_err(failed)?;
        // The chain goes on from the newest whole line: the newest file's, or when it has none
        // (created, then the process stopped) the last one of an earlier file.
        let mut last_line = tail.last_line.clone().map(|line| (newest, line));
        for file in files.iter().rev().skip(1) {
            if last_line.is_some() {
                break;
            }
            let earlier = Tail::read(&file.path).map_err(failed)?;
            last_line = earlier.last_line.map(|line| (file, line));
        }
        if let Some((file, line)) = last_line {
            let (_, hash) = self
                .chain
                .open(&line)
                .map_err(|_| AuditError::Unsealed(file.path.clone()))?;
            hash.clone_into(&mut self.prev);
        }
        let handle = OpenOptions::new()
            .append(true)
            .open(&newest.path)
            .map_err(failed)?;
        self.open = Some(Open {
            day: newest.day_number(),
            file: handle,
            len: tail.whole_len,
            events: tail.events,
        });
        if tail.file_len > tail.whole_len {
            let open = self.open.as_mut().expect("opened above");
            open.file.set_len(tail.whole_len).map_err(failed)?;
            let mut record = self.record(RECOVERED);
            record.insert("cut_bytes".into(), (tail.file_len - tail.whole_len).into());
            record.insert("at_byte".into(), tail.whole_len.into());
            self.append_record(record).map_err(failed)?;
            tracing::warn!(
                file = %newest.name(),
                cut_bytes = tail.file_len - tail.whole_len,
                "the audit file ended in a part line (the writer stopped mid-write); cut it off and recorded the cut"
            );
        }
        if newest.day_number() < file::day_number(SystemTime::now()) {
            self.close_file().map_err(failed)?;
        }
        self.prune();
        Ok(())
    }

    /// Writes what comes until a [`Message::Close`] or until every sender is gone, then closes
    /// the file.
    pub(super) fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            batch.clear();
            let taken = queue.blocking_recv_many(&mut batch, BATCH);
            if taken == 0 {
                break;
            }
            let started = Instant::now();
            self.metrics
                .queue_depth
                .set(f64::from(u32::try_from(queue.len()).unwrap_or(u32::MAX)));
            // Taken where they lie: moving them into a list of their own would cost a large
            // allocation a batch.
            let events = batch.iter().filter_map(|message| match message {
                Message::Event(event) => Some(event),
                Message::Close => None,
            });
            self.write_events(events);
            if batch
                .iter()
                .any(|message| matches!(message, Message::Close))
            {
                break;
            }
            if taken < BATCH
                && let Some(rest) = GATHER.checked_sub(started.elapsed())
            {
                std::thread::sleep(rest);
            }
        }
        if let Err(error) = self.close_file() {
            tracing::error!(%error, "cannot close the audit file");
        }
        if let Some(pruning) = self.pruning.take() {
            let _ = pruning.join();
        }
    }

    /// Writes `events`, each into the file of its day (an event stamped a moment before the
    /// day the writer has moved to goes into the newer file).
    fn write_events<'e>(&mut self, events: impl Iterator<Item = &'e Event>) {
        let mut run = Vec::new();
        let mut run_day = 0;
        for event in events {
            let day = event.day_number().max(self.current_day().unwrap_or(0));
            if day != run_day && !run.is_empty() {
                self.write_day(run_day, &std::mem::take(&mut run));
            }
            run_day = day;
            run.push(event);
        }
        if !run.is_empty() {
            self.write_day(run_day, &run);
        }
    }

    fn current_day(&self) -> Option<u64> {
        self.open.as_ref().map(|open| open.day)
    }

    /// Writes one day's events as one batch, until it is written (block) or once (drop).
    fn write_day(&mut self, day: u64, mut events: &[&Event]) {
        loop {
            self.healthy.writing(events.len());
            let (written, result) = self.try_write_day(day, events);
            let turn = self.healthy.written(result.is_ok());
            let Err(error) = result else {
                if turn == Turn::Recovered {
                    tracing::info!("the audit files are written again");
                }
                return;
            };
            // The pieces a failed write kept are written: only the rest is tried again.
            events = &events[written..];
            self.metrics.errors.increment(1);
            if turn == Turn::Failed {
                tracing::error!(
                    dir = %self.dir.display(),
                    %error,
                    "cannot write the audit file; with --audit-overflow block calls are refused (health NOT_SERVING) until writes succeed"
                );
            }
            if self.overflow == Overflow::Drop {
                self.metrics
                    .dropped_write_error
                    .increment(events.len() as u64);
                return;
            }
            if self.closing.load(Ordering::Relaxed) {
                tracing::error!(
                    events = events.len(),
                    "shutting down with audit events that could not be written"
                );
                return;
            }
            std::thread::sleep(RETRY_DELAY);
        }
    }

    /// How many of `events` are written (each whole piece kept), and whether all of them are.
    fn try_write_day(&mut self, day: u64, events: &[&Event]) -> (usize, std::io::Result<()>) {
        if self.current_day() != Some(day)
            && let Err(error) = self.close_file().and_then(|()| self.open_day(day))
        {
            return (0, Err(error));
        }
        let Self {
            open,
            replica,
            times,
            chain,
            prev,
            lines,
            metrics,
            ..
        } = self;
        let Some(open) = open.as_mut() else {
            return (0, Err(no_file()));
        };
        let mut pieces = events.chunks(PIECE);
        let appended = append(
            &mut open.file,
            &mut open.len,
            &metrics.bytes,
            lines,
            prev,
            |out, prev| {
                let Some(piece) = pieces.next() else {
                    return false;
                };
                for event in piece {
                    let start = out.len();
                    event.write_json(replica, times, out);
                    chain.seal(out, start, prev);
                }
                true
            },
        );
        // Every piece but the last holds PIECE events, and a failure keeps no later piece.
        let (written, result) = match appended {
            Ok(()) => (events.len(), Ok(())),
            Err(failed) => (failed.kept_pieces * PIECE, Err(failed.error)),
        };
        open.events += written as u64;
        metrics.written.increment(written as u64);
        (written, result)
    }

    fn open_day(&mut self, day: u64) -> std::io::Result<()> {
        let path = self
            .dir
            .join(file::name(&file::day_name(day), &self.replica));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        self.open = Some(Open {
            day,
            file,
            len,
            events: 0,
        });
        self.prune();
        Ok(())
    }

    /// Deletes the replica's files older than the retention that verify (at start and at each
    /// new day), on a thread of its own: verifying old files can take a while, and writing must
    /// not wait for it. A pass still running when the next is due is left to finish instead.
    fn prune(&mut self) {
        if self
            .pruning
            .as_ref()
            .is_some_and(|pruning| !pruning.is_finished())
        {
            return;
        }
        let (dir, replica, chain) = (self.dir.clone(), self.replica.clone(), self.chain.clone());
        let retention = self.retention;
        let pass = move || prune(&dir, &replica, &chain, retention);
        match std::thread::Builder::new()
            .name("audit-retention".into())
            .spawn(pass)
        {
            Ok(pruning) => self.pruning = Some(pruning),
            Err(error) => tracing::error!(%error, "cannot apply --audit-retention"),
        }
    }

    /// Chains `record` after the last line and appends it to the open file (see [`append`]).
    fn append_record(&mut self, record: Map<String, Value>) -> std::io::Result<()> {
        let open = self.open.as_mut().ok_or_else(no_file)?;
        let (chain, mut record) = (&self.chain, Some(record));
        append(
            &mut open.file,
            &mut open.len,
            &self.metrics.bytes,
            &mut self.lines,
            &mut self.prev,
            |out, prev| {
                let Some(record) = record.take() else {
                    return false;
                };
                // Writing JSON into a Vec cannot fail. The closing brace goes: `seal` ends it.
                let _ = serde_json::to_writer(&mut *out, &record);
                out.pop();
                chain.seal(out, 0, prev);
                true
            },
        )
        .map_err(|failed| failed.error)
    }

    /// Writes the closing record of the open file, if one is open, and lets it go.
    fn close_file(&mut self) -> std::io::Result<()> {
        let Some(events) = self.open.as_ref().map(|open| open.events) else {
            return Ok(());
        };
        let mut record = self.record(CLOSE);
        record.insert("events".into(), events.into());
        record.insert("last_hash".into(), self.prev.clone().into());
        self.append_record(record)?;
        // A witness outside the audit files: the operational log, shipped apart from them,
        // keeps each closed file's last hash, which `audit verify` prints, so a closed file
        // removed or cut from the end with its closing record rebuilt shows.
        if let Some(open) = self.open.take() {
            tracing::info!(
                file = %file::name(&file::day_name(open.day), &self.replica),
                events,
                last_hash = %self.prev,
                "closed an audit file"
            );
        }
        Ok(())
    }

    /// A record (not an event) of `kind`: `record`, `time` and `replica` first.
    fn record(&self, kind: &str) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert(RECORD.into(), kind.into());
        record.insert(
            "time".into(),
            humantime::format_rfc3339_micros(SystemTime::now())
                .to_string()
                .into(),
        );
        record.insert("replica".into(), self.replica.clone().into());
        record
    }
}

/// Deletes `replica`'s files in `dir` older than `retention` that verify under `chain`; logs
/// what it deleted, and a file it kept because it did not verify.
fn prune(dir: &Path, replica: &str, chain: &Chain, retention: Duration) {
    match retention::prune(dir, replica, chain, retention, SystemTime::now()) {
        Ok(pruned) => {
            if !pruned.deleted.is_empty() {
                tracing::info!(files = ?pruned.deleted, "deleted audit files past --audit-retention");
            }
            if let Some(broken) = pruned.broken {
                tracing::error!(
                    %broken,
                    "kept an audit file past --audit-retention, and the files after it: it does not verify"
                );
            }
        }
        Err(error) => tracing::error!(%error, "cannot apply --audit-retention"),
    }
}

fn no_file() -> std::io::Error {
    std::io::Error::other("no audit file open")
}

/// What [`append`] needs of a file besides writing to it.
trait Appendable: Write {
    fn sync(&mut self) -> std::io::Result<()>;
    /// Cuts the file to its first `len` bytes.
    fn cut(&mut self, len: u64) -> std::io::Result<()>;
}

impl Appendable for File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }

    fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }
}

/// A failed [`append`]: why, and how many pieces it kept.
#[derive(Debug)]
struct AppendError {
    error: std::io::Error,
    /// The whole pieces written before a failed write, kept and synced.
    kept_pieces: usize,
}

/// Appends to `file`, `len` bytes long, the lines `next` seals into `buffer` after the chain's
/// last hash `prev`, a piece at a time until it says there is no more, and syncs the file once;
/// `len` and `prev` follow what was written, and `bytes` counts it.
///
/// When a piece cannot be written (a full disk), the whole pieces before it are kept if they
/// can be synced, and the rest is cut back off: a retry then needs room for the rest only, not
/// for the whole batch again. When the sync fails, or the kept pieces' does, everything is cut
/// back: after a failed `fsync` the kernel may have dropped the pages, and a second one would
/// not say so. Either way no part line stays, and the next line is chained after the last one
/// kept.
///
/// Each piece is written as soon as it is made, while it is still in the CPU's cache: the
/// kernel's copy into the page cache was half of the writer's time when it read back a batch
/// of megabytes made before.
fn append(
    file: &mut impl Appendable,
    len: &mut u64,
    bytes: &Counter,
    buffer: &mut Vec<u8>,
    prev: &mut String,
    mut next: impl FnMut(&mut Vec<u8>, &mut String) -> bool,
) -> Result<(), AppendError> {
    let last_synced = prev.clone();
    // The whole pieces written so far: their bytes, their count, the chain after them.
    let (mut written, mut pieces, mut after_pieces) = (0, 0, prev.clone());
    let failed_write = loop {
        buffer.clear();
        if !next(buffer, prev) {
            match file.sync() {
                Ok(()) => {
                    *len += written;
                    bytes.increment(written);
                    return Ok(());
                }
                Err(error) => break (error, false),
            }
        }
        if let Err(error) = file.write_all(buffer) {
            break (error, true);
        }
        written += buffer.len() as u64;
        pieces += 1;
        after_pieces.clone_from(prev);
    };
    let (error, in_a_write) = failed_write;
    if in_a_write && pieces > 0 && file.cut(*len + written).and_then(|()| file.sync()).is_ok() {
        *len += written;
        bytes.increment(written);
        *prev = after_pieces;
        return Err(AppendError {
            error,
            kept_pieces: pieces,
        });
    }
    // Best effort: on a full disk cutting a file back still works.
    let _ = file.cut(*len);
    *prev = last_synced;
    Err(AppendError {
        error,
        kept_pieces: 0,
    })
}

/// What the writer needs of the file it resumes: where its last whole line ends, that line,
/// and how many events the file holds.
struct Tail {
    file_len: u64,
    whole_len: u64,
    last_line: Option<String>,
    events: u64,
}

impl Tail {
    fn read(path: &Path) -> std::io::Result<Self> {
        let mut reader = BufReader::new(File::open(path)?);
        let mut tail = Self {
            file_len: 0,
            whole_len: 0,
            last_line: None,
            events: 0,
        };
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader.read_line(&mut line)?;
            if read == 0 {
                break;
            }
            tail.file_len += read as u64;
            let Some(whole) = line.strip_suffix('\n') else {
                break;
            };
            tail.whole_len += read as u64;
            if !whole.starts_with("{\"record\"") {
                tail.events += 1;
            }
            tail.last_line = Some(whole.to_owned());
        }
        Ok(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk of `room` bytes, holding `data`; its syncs fail while `sync_fails`.
    struct Disk {
        data: Vec<u8>,
        room: usize,
        syncs: usize,
        sync_fails: bool,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let fits = buf.len().min(self.room - self.data.len());
            if fits == 0 && !buf.is_empty() {
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            self.data.extend_from_slice(&buf[..fits]);
            Ok(fits)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Appendable for Disk {
        fn sync(&mut self) -> std::io::Result<()> {
            if self.sync_fails {
                return Err(std::io::ErrorKind::Other.into());
            }
            self.syncs += 1;
            Ok(())
        }

        fn cut(&mut self, len: u64) -> std::io::Result<()> {
            self.data.truncate(usize::try_from(len).unwrap());
            Ok(())
        }
    }

    /// Appends three pieces of 100 lines each to a disk that holds a line and has `room` bytes
    /// (and whose syncs fail when `sync_fails`); gives the chain's last "hash" too.
    fn append_pieces(
        room: usize,
        sync_fails: bool,
    ) -> (Result<(), AppendError>, Disk, u64, String) {
        let old = b"an earlier line\n";
        let mut disk = Disk {
            data: old.to_vec(),
            room,
            syncs: 0,
            sync_fails,
        };
        let mut len = old.len() as u64;
        let mut prev = String::from("0");
        let mut pieces = 0..3;
        let result = append(
            &mut disk,
            &mut len,
            &Counter::noop(),
            &mut Vec::new(),
            &mut prev,
            |out, prev| {
                let Some(piece) = pieces.next() else {
                    return false;
                };
                for line in 0..100 {
                    out.extend_from_slice(format!("piece {piece} line {line:03}\n").as_bytes());
                    // A stand-in for the chain's hash: the count of lines sealed.
                    *prev = (prev.parse::<u32>().unwrap() + 1).to_string();
                }
                true
            },
        );
        (result, disk, len, prev)
    }

    #[test]
    fn every_piece_is_appended_and_the_file_synced_once() {
        let (result, disk, len, prev) = append_pieces(1 << 20, false);
        result.unwrap();
        assert_eq!(prev, "300");
        let text = String::from_utf8(disk.data).unwrap();
        assert_eq!(text.lines().count(), 301);
        assert!(text.ends_with("piece 2 line 099\n"), "{text}");
        assert_eq!(len, text.len() as u64);
        assert_eq!(disk.syncs, 1);
    }

    /// The length of one of [`append_pieces`]' pieces.
    const PIECE_BYTES: usize = 100 * "piece 0 line 000\n".len();

    /// A disk that fills in the second piece: the first, written already, is kept and synced,
    /// and a retry needs room for the rest only.
    #[test]
    fn a_failure_in_a_later_piece_keeps_the_pieces_before_it() {
        let (result, disk, len, prev) = append_pieces(PIECE_BYTES * 3 / 2, false);
        let failed = result.unwrap_err();
        assert_eq!(failed.error.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(failed.kept_pieces, 1);
        let text = String::from_utf8(disk.data).unwrap();
        assert_eq!(
            text.lines().count(),
            101,
            "no part of the second piece stays"
        );
        assert!(text.ends_with("piece 0 line 099\n"), "{text}");
        assert_eq!(len, text.len() as u64);
        assert_eq!(disk.syncs, 1);
        assert_eq!(
            prev, "100",
            "the next line is chained after the last one kept"
        );
    }

    /// A disk that fills in the first piece keeps nothing: the file and the chain are as they
    /// were.
    #[test]
    fn a_failure_in_the_first_piece_cuts_the_file_back() {
        let (result, disk, len, prev) = append_pieces(PIECE_BYTES / 2, false);
        assert_eq!(result.unwrap_err().kept_pieces, 0);
        assert_eq!(disk.data, b"an earlier line\n");
        assert_eq!(len, disk.data.len() as u64);
        assert_eq!(prev, "0");
    }

    /// A failed sync keeps nothing, though every piece was written: after a failed `fsync`
    /// the kernel may have dropped the pages, and a second would not say so.
    #[test]
    fn a_failed_sync_cuts_every_piece_back() {
        let (result, disk, len, prev) = append_pieces(1 << 20, true);
        assert_eq!(result.unwrap_err().kept_pieces, 0);
        assert_eq!(disk.data, b"an earlier line\n");
        assert_eq!(len, disk.data.len() as u64);
        assert_eq!(prev, "0");
    }
}
