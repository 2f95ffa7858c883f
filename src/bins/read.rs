//! Reading a data file, bounded in what it may be, in size and in time: a data path may be
//! anything an operator (or a broken deployment) points it at.
//!
//! Only regular files are read: opening a FIFO waits for a writer that may never come, and
//! `/dev/zero` never ends. A file is read on a thread of its own; when that thread brings
//! nothing for [`STALL_TIMEOUT`] (a hung network mount) the read fails and the thread, stuck in
//! the kernel, is left behind, at most [`MAX_HUNG_READS`] of them.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most bytes a data source may hold, compressed or not, and the most its table may hold
/// once decompressed: 1 GiB, several times the largest BIN table known (about 3 million rows
/// of some 150 bytes). It bounds the memory a load takes, and a gzip bomb's.
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// How long a read may bring nothing before it fails: 10 s. A local disk answers in
/// milliseconds; a network mount that says nothing for this long is hung.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads left hung in the kernel (each holds a thread) past which new reads are refused
/// rather than leaving one more thread behind.
pub const MAX_HUNG_READS: usize = 4;

/// Bytes a read hands over at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// Reads that gave up on their thread while it was still inside a read.
static HUNG_READS: AtomicUsize = AtomicUsize::new(0);

/// Why a data path cannot be read, in the words an operator needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("no such file")]
    Missing,
    #[error("is a directory, not a file")]
    Directory,
    #[error("is a symlink loop")]
    SymlinkLoop,
    #[error("cannot read: permission denied")]
    PermissionDenied,
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("holds more than {max} bytes (the limit for BIN data)", max = MAX_DATA_BYTES)]
    TooLarge,
    #[error("no data for {} s (a hung network mount?); the read was abandoned", .0.as_secs())]
    Stalled(Duration),
    #[error("{MAX_HUNG_READS} earlier reads of BIN data are still hung; not starting another")]
    TooManyHungReads,
    #[error("cannot read: {0}")]
    Other(String),
}

impl FileProblem {
    /// What `error`, from opening or reading `path`, says about it.
    fn of(path: &Path, error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound => Self::Missing,
            io::ErrorKind::PermissionDenied => Self::PermissionDenied,
            io::ErrorKind::IsADirectory => Self::Directory,
            // Following the link failed for another reason than a missing target: the
            // operating system gave up on a chain of links that never ends.
            _ if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) => Self::SymlinkLoop,
            _ => Self::Other(error.to_string()),
        }
    }

    fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

/// Opens `path` if it is a regular file that can be read (following symlinks).
///
/// # Errors
/// [`FileProblem`] saying what the path is instead.
pub fn open_regular(path: &Path) -> Result<File, FileProblem> {
    let metadata = std::fs::metadata(path).map_err(|e| FileProblem::of(path, &e))?;
    regular(&metadata)?;
    let file = File::open(path).map_err(|e| FileProblem::of(path, &e))?;
    // Checked again on what was opened: the path may have been replaced in between.
    regular(&file.metadata().map_err(|e| FileProblem::of(path, &e))?)?;
    Ok(file)
}

fn regular(metadata: &std::fs::Metadata) -> Result<(), FileProblem> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_dir() {
        return Err(FileProblem::Directory);
    }
    Err(FileProblem::NotRegular(special_kind(kind)))
}

#[cfg(unix)]
fn special_kind(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: std::fs::FileType) -> &'static str {
    "a special file"
}

/// The bytes of the file at `path`, read as the module says: a regular file only, at most
/// [`MAX_DATA_BYTES`], failing when nothing comes for [`STALL_TIMEOUT`]. Errors come as
/// [`io::Error`]s wrapping a [`FileProblem`].
///
/// # Errors
/// When too many earlier reads are hung, or no thread can be started.
pub fn read_file(path: PathBuf) -> io::Result<impl Read + Send> {
    read_on_thread(
        move || {
            open_regular(&path)
                .map(Capped::new)
                .map_err(FileProblem::into_io)
        },
        STALL_TIMEOUT,
    )
}

/// Runs `open` and reads what it opens on a thread of its own, handing the bytes over; a wait
/// of `timeout` for the next bytes fails the read.
fn read_on_thread<R: Read>(
    open: impl FnOnce() -> io::Result<R> + Send + 'static,
    timeout: Duration,
) -> io::Result<TimedReader> {
    if HUNG_READS.load(Ordering::Relaxed) >= MAX_HUNG_READS {
        return Err(FileProblem::TooManyHungReads.into_io());
    }
    let (send, chunks) = mpsc::sync_channel::<io::Result<Vec<u8>>>(2);
    let abandoned = Arc::new(Mutex::new(Abandoned::default()));
    let reader_abandoned = Arc::clone(&abandoned);
    std::thread::Builder::new()
        .name("bin-data-read".into())
        .spawn(move || {
            pump(open, &send);
            let mut state = reader_abandoned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.finished = true;
            if state.abandoned {
                HUNG_READS.fetch_sub(1, Ordering::Relaxed);
            }
        })?;
    Ok(TimedReader {
        chunks,
        chunk: Vec::new(),
        at: 0,
        timeout,
        abandoned,
    })
}

/// Sends what `open` opens, chunk by chunk, until its end, an error, or nobody listening.
fn pump<R: Read>(
    open: impl FnOnce() -> io::Result<R>,
    send: &mpsc::SyncSender<io::Result<Vec<u8>>>,
) {
    let mut input = match open() {
        Ok(input) => input,
        Err(error) => {
            let _ = send.send(Err(error));
            return;
        }
    };
    loop {
        let mut chunk = vec![0; CHUNK_BYTES];
        match input.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if send.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                let _ = send.send(Err(error));
                return;
            }
        }
    }
}

/// Whether the reading side gave up on a reading thread, and whether that thread finished.
#[derive(Debug, Default)]
struct Abandoned {
    abandoned: bool,
    finished: bool,
}

/// The reading side of [`read_on_thread`].
#[derive(Debug)]
struct TimedReader {
    chunks: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    timeout: Duration,
    abandoned: Arc<Mutex<Abandoned>>,
}

impl Read for TimedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.chunk.len() {
            match self.chunks.recv_timeout(self.timeout) {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                // The thread ended after sending everything.
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
                Err(RecvTimeoutError::Timeout) => {
                    let mut state = self
                        .abandoned
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if !state.finished && !state.abandoned {
                        state.abandoned = true;
                        HUNG_READS.fetch_add(1, Ordering::Relaxed);
                    }
                    return Err(FileProblem::Stalled(self.timeout).into_io());
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A reader that fails with [`FileProblem::TooLarge`] past [`MAX_DATA_BYTES`].
#[derive(Debug)]
pub struct Capped<R> {
    inner: R,
    read: u64,
}

impl<R> Capped<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, read: 0 }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > MAX_DATA_BYTES {
            return Err(FileProblem::TooLarge.into_io());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(error: &io::Error) -> Option<&FileProblem> {
        error.get_ref().and_then(|inner| inner.downcast_ref())
    }

    #[test]
    fn a_read_that_brings_nothing_fails_and_is_counted_as_hung() {
        // A reader that never answers, as a hung network mount does; it is let go at the end.
        let (release, hung) = mpsc::channel::<()>();
        let mut reader = read_on_thread(
            move || {
                let _ = hung.recv();
                Ok(io::empty())
            },
            Duration::from_millis(50),
        )
        .unwrap();
        let error = reader.read(&mut [0; 16]).unwrap_err();
        assert_eq!(
            problem(&error),
            Some(&FileProblem::Stalled(Duration::from_millis(50)))
        );
        assert!(error.to_string().contains("hung network mount"), "{error}");
        assert!(reader.abandoned.lock().unwrap().abandoned);
        drop(release);
    }

    #[test]
    fn bytes_come_through_whole_and_errors_as_they_were() {
        let text = "x".repeat(3 * CHUNK_BYTES + 5);
        let bytes = text.clone().into_bytes();
        let mut reader =
            read_on_thread(move || Ok(io::Cursor::new(bytes)), Duration::from_secs(60)).unwrap();
        let mut read = String::new();
        reader.read_to_string(&mut read).unwrap();
        assert_eq!(read, text);

        let mut failing = read_on_thread(
            || Err::<io::Empty, _>(FileProblem::Missing.into_io()),
            Duration::from_secs(60),
        )
        .unwrap();
        let error = failing.read(&mut [0; 16]).unwrap_err();
        assert_eq!(problem(&error), Some(&FileProblem::Missing));
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        let mut capped = Capped::new(io::repeat(b'x'));
        let error = io::copy(&mut capped, &mut io::sink()).unwrap_err();
        assert_eq!(problem(&error), Some(&FileProblem::TooLarge));
    }

    #[cfg(unix)]
    #[test]
    fn special_files_directories_and_loops_are_named() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("card-lookup-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            open_regular(Path::new("/dev/zero")).unwrap_err(),
            FileProblem::NotRegular("a character device")
        );
        assert_eq!(open_regular(&dir).unwrap_err(), FileProblem::Directory);
        let looped = dir.join("loop");
        let _ = std::fs::remove_file(&looped);
        symlink(&looped, &looped).unwrap();
        assert_eq!(open_regular(&looped).unwrap_err(), FileProblem::SymlinkLoop);
        assert_eq!(
            open_regular(&dir.join("missing")).unwrap_err(),
            FileProblem::Missing
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
