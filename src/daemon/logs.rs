//! Program output: pipe readers -> size-rotated log files, plus live followers.
//!
//! Each program has its own reader task ([`pump`]), which yields after a bounded number of
//! reads, so a chatty program never starves the supervisor. Writes are plain blocking writes
//! on the daemon's one thread: a log directory on a stalled network disk stalls the daemon
//! (local disks, the normal case, keep up: see bench/). A [`LogFile`] outlives the process runs that write to it (a restart
//! appends to the same file) and is shared by the pipe readers of successive runs, so its
//! small mutex only guards the file handle and rotation, never supervisor state.
//!
//! Rotation happens in the writer, at a line boundary where possible: the chunk up to its last
//! newline goes to the old file, the rest to the new one, so no line is lost or duplicated.
//! Followers receive the same chunks through a broadcast channel that is created only once
//! someone follows, so idle logs cost nothing. Line watchers (`ready log="..."`) are likewise
//! only looked at while there are some.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, PipeReader, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, oneshot};

/// A chunk of new output, numbered in the order the daemon wrote it across every log, so that
/// a follower of both of a program's streams can replay them in arrival order.
pub type Chunk = (u64, Arc<[u8]>);

/// A live subscription to a log's new output.
pub type Follower = broadcast::Receiver<Chunk>;

/// The number of the next [`Chunk`].
static NEXT_CHUNK: AtomicU64 = AtomicU64::new(0);

/// How often a log that is being written checks that its file still exists.
const UNLINK_CHECK: Duration = Duration::from_secs(1);

/// First wait before writing again after a write failed (a full disk); doubles up to
/// [`MAX_RETRY`]. Output arriving meanwhile is dropped and counted without a system call, so
/// a program flooding a full disk costs a read per chunk and nothing more.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Chunks queued per follower before it is told it lagged.
const FOLLOW_QUEUE: usize = 256;

/// Who may read log files besides their owner: nobody (0600), or one access group (0640,
/// group-owned by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharing {
    /// Permission bits of the files.
    pub mode: u32,
    /// The group that owns them, when shared.
    pub gid: Option<u32>,
}

impl Sharing {
    /// Owner only.
    pub const PRIVATE: Sharing = Sharing { mode: 0o600, gid: None };

    /// Readable by the members of `gid`, if any.
    pub fn with_group(gid: Option<u32>) -> Sharing {
        match gid {
            Some(_) => Sharing { mode: 0o640, gid },
            None => Sharing::PRIVATE,
        }
    }

    /// Gives an open log file these permissions (and group).
    fn apply(self, file: &File) -> io::Result<()> {
        use std::os::fd::AsFd;
        let meta = file.metadata()?;
        // Group first: a new file must never be 0640 while it still has our primary group.
        if let Some(gid) = self.gid
            && meta.gid() != gid
        {
            nix::unistd::fchown(file.as_fd(), None, Some(nix::unistd::Gid::from_raw(gid)))?;
        }
        if meta.permissions().mode() & 0o777 != self.mode {
            file.set_permissions(std::fs::Permissions::from_mode(self.mode))?;
        }
        Ok(())
    }
}

/// Every log the daemon has, by path (see [`LogFile::open`]).
static OPEN: Mutex<std::collections::BTreeMap<PathBuf, std::sync::Weak<LogFile>>> =
    Mutex::new(std::collections::BTreeMap::new());

/// Which of the daemon's own descriptors a log path names, if it names one.
fn daemon_stream(path: &Path) -> Option<i32> {
    let p = path.to_str()?;
    match p {
        "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1" | "/proc/1/fd/1" => Some(1),
        "/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2" | "/proc/1/fd/2" => Some(2),
        _ => None,
    }
}

/// A log that cannot be written at the moment.
#[derive(Debug)]
struct Failing {
    error: String,
    since: SystemTime,
    /// Bytes dropped since writing began to fail.
    dropped: u64,
    retry_at: Instant,
    delay: Duration,
}

/// One rotated log file.
#[derive(Debug)]
pub struct LogFile {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// 1 or 2 when this "file" is the daemon's own stdout or stderr.
    daemon_fd: Option<i32>,
    file: Option<File>,
    size: u64,
    max_bytes: u64,
    backups: u32,
    sharing: Sharing,
    timestamps: bool,
    /// The last byte written ended a line (where the next timestamp goes).
    at_line_start: bool,
    /// Writing is failing: since when, why, what was dropped, when to try again. Shown by
    /// `svc status` until a write succeeds again.
    failing: Option<Box<Failing>>,
    /// Bytes dropped because they could not be written, since the daemon started.
    dropped: u64,
    /// When the file was last checked for having been deleted under us.
    checked: Instant,
    followers: Option<broadcast::Sender<Chunk>>,
    /// Waiters for a line containing some text; `None` (the normal case) costs one branch.
    watchers: Option<Box<Watchers>>,
}

/// The waiters of [`LogFile::watch_line`].
#[derive(Debug, Default)]
struct Watchers {
    list: Vec<(Box<[u8]>, oneshot::Sender<()>)>,
    /// The end of the current unterminated line, as long as the longest text less one byte:
    /// all a text split between two writes needs, however long the line grows.
    tail: Vec<u8>,
}

impl Watchers {
    /// Fires the waiters whose text `data` completes within a line; true when none is left.
    fn feed(&mut self, data: &[u8]) -> bool {
        self.list.retain(|(_, tx)| !tx.is_closed());
        let keep = self.list.iter().map(|(t, _)| t.len()).max().unwrap_or(0).saturating_sub(1);
        let mut pieces = data.split(|&b| b == b'\n').peekable();
        while let Some(piece) = pieces.next() {
            // Every piece but the last is followed by a newline, which ends its line.
            let ended = pieces.peek().is_some();
            // A text split across writes starts in the carried tail and ends in this piece's
            // first `keep` bytes; anything else lies wholly in the piece.
            let mut joint = std::mem::take(&mut self.tail);
            joint.extend_from_slice(&piece[..piece.len().min(keep)]);
            for (_, tx) in self.list.extract_if(.., |(text, _)| contains(&joint, text) || contains(piece, text)) {
                let _ = tx.send(());
            }
            if ended {
                joint.clear();
            } else if piece.len() >= keep {
                joint.clear();
                joint.extend_from_slice(&piece[piece.len() - keep..]);
            } else {
                joint.drain(..joint.len().saturating_sub(keep));
            }
            self.tail = joint;
        }
        self.list.is_empty()
    }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl LogFile {
    /// A log at `path`, rotated past `max_bytes` (0 = never) keeping `backups` old files,
    /// created with `sharing`'s permissions. The file is opened at the first write; failure
    /// is remembered, reported, and retried on each write.
    /// With `timestamps`, every line is prefixed with its arrival time (RFC 3339, UTC).
    ///
    /// One path has one `LogFile` in the daemon: programs that name the same file (supervisord
    /// allows it: several programs, or numprocs instances, appending to one log) share it, so
    /// their lines never tear each other and one of them, not each, rotates it. The first
    /// opener's settings apply (the config requires sharers to agree).
    /// `/dev/stdout`, `/dev/stderr`, `/dev/fd/1|2` and `/proc/self|1/fd/1|2` mean the daemon's
    /// own stdout or stderr (the container idiom): never rotated, never reopened by path.
    pub fn open(path: PathBuf, max_bytes: u64, backups: u32, sharing: Sharing, timestamps: bool) -> Arc<LogFile> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = open.get(&path).and_then(std::sync::Weak::upgrade) {
            return log;
        }
        let key = path.clone();
        let log = LogFile::open_own(path, max_bytes, backups, sharing, timestamps);
        if open.len() >= 64 && open.len().is_power_of_two() {
            open.retain(|_, w| w.strong_count() > 0);
        }
        open.insert(key, Arc::downgrade(&log));
        log
    }

    /// [`LogFile::open`] for a path no other program can name (a program's default log): not
    /// registered, since 2000 default paths in the registry cost 200 KB at 1000 programs.
    pub fn open_own(path: PathBuf, max_bytes: u64, backups: u32, sharing: Sharing, timestamps: bool) -> Arc<LogFile> {
        let daemon_fd = daemon_stream(&path);
        // The daemon's own stream is never rotated: there is no file to rename.
        let (max_bytes, backups) = if daemon_fd.is_some() { (0, 0) } else { (max_bytes, backups) };
        let inner = Inner {
            daemon_fd,
            path,
            file: None,
            size: 0,
            max_bytes,
            backups,
            sharing,
            timestamps,
            at_line_start: true,
            failing: None,
            dropped: 0,
            checked: Instant::now(),
            followers: None,
            watchers: None,
        };
        // The file is created with the first byte: a thousand quiet programs then cost no
        // files, no descriptors, and no inode allocations at start-up.
        Arc::new(LogFile { inner: Mutex::new(inner) })
    }

    /// `Some("stdout")` or `Some("stderr")` when this log is the daemon's own stream.
    pub fn daemon_stream(&self) -> Option<&'static str> {
        match self.lock().daemon_fd? {
            1 => Some("stdout"),
            _ => Some("stderr"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the file in a state worse than a
        // partial write, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Why writing is failing, if it is, with what has been dropped since.
    pub fn error(&self) -> Option<String> {
        let inner = self.lock();
        let f = inner.failing.as_ref()?;
        let since = humantime::format_rfc3339_seconds(f.since);
        Some(format!("{} (since {since}; {} bytes dropped)", f.error, f.dropped))
    }

    /// Whether lines are stamped with their arrival time (`log-timestamps`).
    pub fn timestamps(&self) -> bool {
        self.lock().timestamps
    }

    /// Why output cannot reach this log: the error of a failing write, or, before anything
    /// was written (the file is created with the first byte), why the file could not be made.
    pub fn problem(&self) -> Option<String> {
        if let Some(e) = self.error() {
            return Some(e);
        }
        let inner = self.lock();
        if inner.file.is_some() {
            return None;
        }
        // The file, or else the nearest directory that exists (missing ones are created).
        let mut probe = inner.path.as_path();
        while !probe.exists() {
            probe = probe.parent()?;
        }
        if probe != inner.path && !probe.is_dir() {
            let e = io::Error::from_raw_os_error(libc::ENOTDIR);
            return Some(format!("cannot write {}: {e}", inner.path.display()));
        }
        let mode = if probe == inner.path {
            nix::unistd::AccessFlags::W_OK
        } else {
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK
        };
        nix::unistd::access(probe, mode)
            .err()
            .map(|e| format!("cannot write {}: {}", inner.path.display(), io::Error::from(e)))
    }

    /// Whether the file is open (it holds a descriptor).
    pub fn is_open(&self) -> bool {
        self.lock().file.is_some()
    }

    /// Bytes of output dropped because they could not be written, since the daemon started.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Appends `data`, rotating first if it would grow past `max_bytes`.
    pub fn write(&self, data: &[u8]) {
        let mut inner = self.lock();
        let raw = data;
        let stamped;
        let data = if inner.timestamps {
            stamped = inner.stamp(data);
            &stamped[..]
        } else {
            data
        };
        inner.write(data);
        // The program's own bytes, not the timestamps: a text never matches a time.
        if let Some(w) = &mut inner.watchers
            && w.feed(raw)
        {
            inner.watchers = None;
        }
        if let Some(tx) = &inner.followers {
            if tx.receiver_count() == 0 {
                inner.followers = None;
            } else {
                let _ = tx.send((NEXT_CHUNK.fetch_add(1, Ordering::Relaxed), Arc::from(data)));
            }
        }
    }

    /// A receiver that fires once a line written after this call contains `text` (as soon as
    /// the text is complete: the line need not be ended yet). Lines split across writes and
    /// rotations are followed; memory is bounded by the text's length, not the line's. Dropping
    /// the receiver drops the watch at the next write.
    pub fn watch_line(&self, text: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        let watchers = inner.watchers.get_or_insert_with(Default::default);
        watchers.list.retain(|(_, tx)| !tx.is_closed());
        watchers.list.push((text.as_bytes().into(), tx));
        rx
    }

    /// Empties the log and removes its rotated backups (`svc clear`).
    pub fn clear(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.daemon_fd.is_some() {
            return Err(io::Error::other("it goes to the daemon's own output, which svc does not clear"));
        }
        for n in 1..=inner.backups {
            match std::fs::remove_file(rotated(&inner.path, n)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        match inner.file.as_mut() {
            // O_APPEND writes go to the new end after truncation, so the open handle stays valid.
            Some(f) => f.set_len(0)?,
            None => match OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(&inner.path) {
                Ok(f) => f.set_len(0)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
        }
        inner.size = 0;
        Ok(())
    }

    /// Changes who may read this log (a reload changed `access`): the open file, the file at
    /// its path if it is not open, and its backups (a custom path may be outside the log
    /// directory, which the supervisor handles as a whole).
    pub fn set_sharing(&self, sharing: Sharing) {
        let mut inner = self.lock();
        if inner.daemon_fd.is_some() {
            return;
        }
        inner.sharing = sharing;
        let current = match &inner.file {
            Some(file) => sharing.apply(file).map_err(|e| (inner.path.clone(), e)),
            None => share_path(&inner.path, sharing),
        };
        let backups = (1..=inner.backups).map(|n| share_path(&rotated(&inner.path, n), sharing));
        for (path, e) in std::iter::once(current).chain(backups).filter_map(Result::err) {
            tracing::warn!("cannot set the permissions of {}: {e}", path.display());
        }
    }

    /// The last `lines` lines (from the current file and, if it is short, the newest backup),
    /// plus a subscription to everything written after them when `follow` is set. Taken under
    /// one lock, so nothing is missed or repeated between the two.
    pub fn tail(&self, lines: usize, follow: bool) -> (Vec<u8>, Option<Follower>) {
        let mut inner = self.lock();
        if let Some(f) = inner.file.as_mut() {
            let _ = f.flush();
        }
        // The daemon's own stream keeps no history here; followers still see new output.
        let mut text =
            if inner.daemon_fd.is_some() { Vec::new() } else { tail_file(&inner.path, lines).unwrap_or_default() };
        let have = text.iter().filter(|&&b| b == b'\n').count();
        if have < lines && inner.backups > 0 {
            let older = tail_file(&rotated(&inner.path, 1), lines - have).unwrap_or_default();
            text = [older, text].concat();
        }
        let rx = follow.then(|| inner.followers.get_or_insert_with(|| broadcast::channel(FOLLOW_QUEUE).0).subscribe());
        (text, rx)
    }
}

impl Inner {
    /// `data` with the current time before each line that starts in it.
    fn stamp(&mut self, data: &[u8]) -> Vec<u8> {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let mut out = Vec::with_capacity(data.len() + 32);
        for piece in data.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                out.extend_from_slice(now.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(piece);
            self.at_line_start = piece.ends_with(b"\n");
        }
        out
    }

    fn reopen(&mut self) {
        if let Some(fd) = self.daemon_fd {
            // A copy, so that this handle can be dropped and reopened like a file's.
            // SAFETY: fd 1 and 2 stay open for the daemon's whole life (never closed by svc).
            match nix::unistd::dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }) {
                Ok(copy) => self.file = Some(File::from(copy)),
                Err(e) => self.failed(&e.into()),
            }
            return;
        }
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(self.sharing.mode)
                // A symlink planted where a log should be must not redirect our writes.
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)
        };
        let opened = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The directory is missing (removed since start-up, or a custom log path):
                // make it, private like the log directory the daemon made.
                if let Some(dir) = self.path.parent() {
                    let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
                }
                open()
            }
            other => other,
        };
        match opened.and_then(|f| f.metadata().map(|m| (f, m))) {
            Ok((file, meta)) => {
                // An existing file keeps its old mode otherwise (e.g. after an access group
                // was added to the config), and a new one gets the daemon's primary group.
                if meta.is_file()
                    && let Err(e) = self.sharing.apply(&file)
                {
                    tracing::warn!("cannot set the permissions of {}: {e}", self.path.display());
                }
                self.file = Some(file);
                self.size = meta.len();
            }
            Err(e) => {
                self.file = None;
                self.failed(&e);
            }
        }
    }

    /// A write or open failed: say so once, then drop output until the retry time. The
    /// message and the retries are what keep a full disk from becoming a log storm.
    fn failed(&mut self, e: &io::Error) {
        let now = Instant::now();
        match &mut self.failing {
            Some(f) => {
                f.delay = (f.delay * 2).min(MAX_RETRY);
                f.retry_at = now + f.delay;
            }
            None => {
                tracing::warn!(
                    "cannot write {}: {e}; dropping its output until it can be written again",
                    self.path.display()
                );
                self.failing = Some(Box::new(Failing {
                    error: format!("cannot write {}: {e}", self.path.display()),
                    since: SystemTime::now(),
                    dropped: 0,
                    retry_at: now + FIRST_RETRY,
                    delay: FIRST_RETRY,
                }));
            }
        }
    }

    fn drop_bytes(&mut self, n: usize) {
        self.dropped += n as u64;
        if let Some(f) = &mut self.failing {
            f.dropped += n as u64;
        }
    }

    /// Appends `data`, rotating at `max_bytes`: a file never grows past it. Whole lines go to
    /// the old file; only a line longer than `max_bytes` is split.
    fn write(&mut self, mut data: &[u8]) {
        while self.max_bytes > 0 && self.size + data.len() as u64 > self.max_bytes {
            let room = self.max_bytes.saturating_sub(self.size).min(data.len() as u64) as usize;
            let mut head = data[..room].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if head == 0 && self.size == 0 {
                // One line longer than a whole file: it has to be split somewhere.
                head = room.max(1);
            }
            self.write_all(&data[..head]);
            data = &data[head..];
            self.rotate();
        }
        self.write_all(data);
    }

    fn write_all(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if let Some(f) = &self.failing
            && Instant::now() < f.retry_at
        {
            self.drop_bytes(data.len());
            return;
        }
        if self.file.is_some() && self.daemon_fd.is_none() && self.checked.elapsed() >= UNLINK_CHECK {
            self.checked = Instant::now();
            // Writes to a deleted file (its directory removed, or a user's `rm`) succeed and
            // vanish; notice, and write to a fresh file instead.
            if self.file.as_ref().and_then(|f| f.metadata().ok()).is_some_and(|m| m.nlink() == 0) {
                tracing::warn!("log {} was deleted; recreating it", self.path.display());
                self.file = None;
            }
        }
        if self.file.is_none() {
            self.reopen();
        }
        let Some(file) = self.file.as_mut() else {
            self.drop_bytes(data.len());
            return;
        };
        // By hand rather than write_all, to know how much of it reached the file.
        let mut written = 0;
        let mut error = None;
        while written < data.len() {
            match file.write(&data[written..]) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        self.size += written as u64;
        match error {
            Some(e) => {
                // Reopened at the retry: the handle may be what is broken (a stale NFS file).
                self.file = None;
                self.failed(&e);
                self.drop_bytes(data.len() - written);
            }
            None => {
                if let Some(f) = self.failing.take() {
                    tracing::info!(
                        "log {} writable again: {} bytes were dropped since {} ({})",
                        self.path.display(),
                        f.dropped,
                        humantime::format_rfc3339_seconds(f.since),
                        f.error
                    );
                }
            }
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        // What has been written is in the current file or its backups now; without this, a
        // failing reopen (EMFILE, quota) would make every later write rotate again and push
        // the backups out one by one.
        self.size = 0;
        if std::fs::symlink_metadata(&self.path).is_err() {
            // Nothing to rotate (it could not be created): keep the backups as they are.
        } else if self.backups == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.backups).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            if let Err(e) = std::fs::rename(&self.path, rotated(&self.path, 1)) {
                tracing::warn!("cannot rotate {}: {e}", self.path.display());
            }
        }
        self.reopen();
    }
}

/// [`Sharing::apply`] for a file that is not open: opened without following a symlink, and
/// left alone unless it is a regular file of ours. A missing file is fine.
fn share_path(path: &Path, sharing: Sharing) -> Result<(), (PathBuf, io::Error)> {
    let fail = |e| (path.to_owned(), e);
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() || meta.uid() != nix::unistd::Uid::current().as_raw() {
        return Ok(());
    }
    sharing.apply(&file).map_err(fail)
}

/// `name.log.N`.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// At most this much of a log goes into one tail reply (`svc logs`, `--since`): reading more
/// would hold up the daemon's single thread; the file itself has the rest.
const MAX_TAIL: u64 = 16 * 1024 * 1024;

/// The last `lines` lines of a file (at most [`MAX_TAIL`] bytes of them), reading backwards
/// in blocks so a huge log costs only what is sent. Each block is scanned once, so a file
/// without newlines (a `\r` progress bar) costs no more than one with many.
pub(crate) fn tail_file(path: &Path, lines: usize) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    if lines == 0 || len == 0 {
        return Ok(Vec::new());
    }
    const BLOCK: u64 = 64 * 1024;
    let floor = len.saturating_sub(MAX_TAIL);
    // Blocks from the end backwards, and where the wanted lines start, once found.
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut seen = 0;
    let mut pos = len;
    let mut cut: Option<usize> = None;
    while pos > floor && cut.is_none() {
        let start = pos.saturating_sub(BLOCK).max(floor);
        let mut block = vec![0; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut block)?;
        // A trailing newline ends the last line rather than starting an empty one.
        let scan = if pos == len { block.strip_suffix(b"\n").unwrap_or(&block) } else { &block[..] };
        cut = scan.iter().rposition(|&b| {
            seen += usize::from(b == b'\n');
            seen == lines
        });
        blocks.push(block);
        pos = start;
    }
    let first = blocks.len().saturating_sub(1);
    let mut out = Vec::with_capacity(blocks.iter().map(Vec::len).sum());
    for (k, block) in blocks.iter().enumerate().rev() {
        match cut {
            Some(i) if k == first => out.extend_from_slice(&block[i + 1..]),
            _ => out.extend_from_slice(block),
        }
    }
    Ok(out)
}

/// A program's logs as `svc logs` reads them, handed out by the supervisor.
#[derive(Debug, Clone)]
pub struct ProgramLogs {
    /// The stdout log (`None`: discarded, `path "none"`).
    pub stdout: Option<Arc<LogFile>>,
    /// The stderr log (`None`: discarded, or in stdout with `redirect-stderr`).
    pub stderr: Option<Arc<LogFile>>,
    /// `redirect-stderr`: stderr is written into the stdout log.
    pub redirected: bool,
    /// Whether each log's path was set in the config (stdout, stderr) rather than the default.
    pub custom: [bool; 2],
}

/// A new [`Chunk`] of `data`.
pub(crate) fn chunk(data: &[u8]) -> Chunk {
    (NEXT_CHUNK.fetch_add(1, Ordering::Relaxed), Arc::from(data))
}

/// The time a line starts with (`log-timestamps`' RFC 3339 stamp, or the daemon's own log's).
fn line_time(line: &[u8]) -> Option<SystemTime> {
    let end = line.iter().take(40).position(|&b| b == b' ')?;
    humantime::parse_rfc3339_weak(std::str::from_utf8(&line[..end]).ok()?).ok()
}

/// `text` from its first line stamped at or after `since`. Lines are in time order; lines
/// without a stamp before that one were written before `log-timestamps` was turned on.
pub fn since(text: &[u8], since: SystemTime) -> &[u8] {
    let mut start = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line_time(line).is_some_and(|t| t >= since) {
            return &text[start..];
        }
        start += line.len();
    }
    &text[text.len()..]
}

/// Two tails of one program (stdout, stderr) as one history: by time when they carry
/// `log-timestamps` stamps, the last `lines` of them; otherwise there is no order to recover,
/// and stdout's tail comes before stderr's. Consecutive lines of one stream form one run.
pub fn merge<K: Copy + PartialEq>(a: (K, &[u8]), b: (K, &[u8]), stamped: bool, lines: usize) -> Vec<(K, Vec<u8>)> {
    let mut out: Vec<(K, Vec<u8>)> = Vec::new();
    let mut push = |k: K, line: &[u8]| match out.last_mut() {
        Some((last, run)) if *last == k => run.extend_from_slice(line),
        _ => out.push((k, line.to_vec())),
    };
    if !stamped {
        for (k, text) in [a, b] {
            if !text.is_empty() {
                push(k, text);
            }
        }
        return out;
    }
    let la = timed_lines(a.1);
    let lb = timed_lines(b.1);
    let mut merged: Vec<(K, &[u8])> = Vec::with_capacity(la.len() + lb.len());
    let (mut i, mut j) = (0, 0);
    while i < la.len() || j < lb.len() {
        // Ties go to stdout: it is usually what the program printed first.
        if j == lb.len() || (i < la.len() && la[i].0 <= lb[j].0) {
            merged.push((a.0, la[i].1));
            i += 1;
        } else {
            merged.push((b.0, lb[j].1));
            j += 1;
        }
    }
    for (k, line) in &merged[merged.len().saturating_sub(lines)..] {
        push(*k, line);
    }
    out
}

/// Each line with its time; an unstamped line (written before the option was on) keeps the
/// time of the line before it.
fn timed_lines(text: &[u8]) -> Vec<(SystemTime, &[u8])> {
    let mut t = SystemTime::UNIX_EPOCH;
    text.split_inclusive(|&b| b == b'\n')
        .map(|l| {
            t = line_time(l).unwrap_or(t);
            (t, l)
        })
        .collect()
}

thread_local! {
    /// One read buffer for every pipe on this thread: the daemon runs one thread, and a buffer
    /// per pipe would cost 64 KiB x 2000 pipes at N=1000.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// Reads of one pipe before other tasks get a turn.
const READS_PER_TURN: usize = 16;

enum Step {
    Eof,
    Drained,
    Busy,
}

/// One output pipe and the log it feeds.
type Source = (pipe::Receiver, Arc<LogFile>);

fn watch(pipe: Option<(PipeReader, Arc<LogFile>)>) -> Option<Source> {
    let (reader, log) = pipe?;
    match pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
        Ok(rx) => Some((rx, log)),
        Err(e) => {
            tracing::error!("cannot watch output pipe for {}: {e}", log.path().display());
            None
        }
    }
}

/// Moves what `src` has into its log; `Eof` once every writer has closed the pipe.
fn drain(src: &Source) -> Step {
    let (rx, log) = src;
    READ_BUF.with_borrow_mut(|buf| {
        for _ in 0..READS_PER_TURN {
            match rx.try_read(buf) {
                Ok(0) => return Step::Eof,
                Ok(n) => log.write(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Eof,
            }
        }
        Step::Busy
    })
}

/// Copies a program's stdout and stderr pipes into their logs until every writer has closed
/// them. One task per program rather than per pipe: at 1000 programs that is 1000 fewer tasks
/// resident all day.
pub fn pump(stdout: Option<(PipeReader, Arc<LogFile>)>, stderr: Option<(PipeReader, Arc<LogFile>)>) -> Pump {
    Pump { sources: [watch(stdout), watch(stderr)] }
}

/// The future [`pump`] returns. Written by hand rather than as an `async fn` around
/// `select!`: that one kept two readiness futures in every task, and at 1000 idle programs
/// the tasks were 640 bytes each instead of 256 (measured with heaptrack).
pub struct Pump {
    sources: [Option<Source>; 2],
}

impl std::future::Future for Pump {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::task::Poll;
        let mut busy = false;
        for slot in &mut self.sources {
            while let Some(src) = slot.as_ref() {
                match src.0.poll_read_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(_)) => *slot = None,
                    Poll::Ready(Ok(())) => match drain(src) {
                        Step::Eof => *slot = None,
                        // The read that found the pipe empty cleared its readiness: polling
                        // again registers this task to be woken by the next write.
                        Step::Drained => {}
                        Step::Busy => {
                            busy = true;
                            break;
                        }
                    },
                }
            }
        }
        if self.sources.iter().all(Option::is_none) {
            return Poll::Ready(());
        }
        if busy {
            // A program writing as fast as it can would otherwise keep this single-threaded
            // daemon from answering anyone else: let the other tasks run, then come back.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_every_line_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.out.log");
        let log = LogFile::open(path.clone(), 1000, 100, Sharing::PRIVATE, false);
        let mut chunk = String::new();
        for i in 0..2000 {
            chunk.push_str(&format!("line {i}\n"));
            if i % 7 == 0 {
                log.write(chunk.as_bytes());
                chunk.clear();
            }
        }
        log.write(chunk.as_bytes());
        let mut all = Vec::new();
        for n in (1..=100).rev() {
            if let Ok(t) = std::fs::read_to_string(rotated(&path, n)) {
                assert!(t.ends_with('\n'), "backup {n} ends mid-line");
                all.push(t);
            }
        }
        all.push(std::fs::read_to_string(&path).expect("current log"));
        let joined = all.concat();
        let expected: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(joined, expected);
    }

    #[test]
    fn backups_are_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.log");
        let log = LogFile::open(path.clone(), 10, 2, Sharing::PRIVATE, false);
        for _ in 0..20 {
            log.write(b"0123456789\n");
        }
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
    }

    #[test]
    fn tail_returns_last_lines_across_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.log");
        let log = LogFile::open(path, 20, 3, Sharing::PRIVATE, false);
        for i in 0..10 {
            log.write(format!("l{i}\n").as_bytes());
        }
        let (text, rx) = log.tail(8, false);
        assert_eq!(String::from_utf8_lossy(&text), "l2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\n");
        assert!(rx.is_none());
    }

    #[test]
    fn tail_file_matches_a_naive_tail_across_block_boundaries() {
        // The naive answer: split the whole file into lines and keep the last n.
        fn naive(data: &[u8], n: usize) -> Vec<u8> {
            let body = data.strip_suffix(b"\n").unwrap_or(data);
            let starts: Vec<usize> = std::iter::once(0)
                .chain(body.iter().enumerate().filter(|&(_, &b)| b == b'\n').map(|(i, _)| i + 1))
                .collect();
            if n == 0 {
                return Vec::new();
            }
            let from = starts[starts.len().saturating_sub(n)];
            data[from..].to_vec()
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.log");
        let long_line = vec![b'x'; 200 * 1024];
        let mut many = Vec::new();
        for i in 0..40_000 {
            many.extend_from_slice(format!("line number {i}\n").as_bytes());
        }
        let mut mixed = long_line.clone();
        mixed.extend_from_slice(b"\nshort\n");
        mixed.extend_from_slice(&long_line);
        for data in [&long_line, &many, &mixed] {
            std::fs::write(&path, data).expect("write");
            for n in [0, 1, 2, 3, 10, 5000, 39_999, 40_000, 1_000_000] {
                assert_eq!(tail_file(&path, n).expect("tail"), naive(data, n), "n = {n}, {} bytes", data.len());
            }
        }
    }

    #[test]
    fn tail_of_unterminated_and_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.log");
        let log = LogFile::open(path, 0, 0, Sharing::PRIVATE, false);
        assert!(log.tail(5, false).0.is_empty());
        log.write(b"a\nb\nc");
        assert_eq!(log.tail(2, false).0, b"b\nc");
    }

    #[test]
    fn followers_get_new_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogFile::open(dir.path().join("p.log"), 0, 0, Sharing::PRIVATE, false);
        log.write(b"old\n");
        let (text, rx) = log.tail(10, true);
        assert_eq!(text, b"old\n");
        let mut rx = rx.expect("subscribed");
        log.write(b"new\n");
        assert_eq!(&*rx.try_recv().expect("chunk").1, b"new\n");
    }

    #[test]
    fn unwritable_log_reports_and_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("gone");
        let log = LogFile::open(sub.join("p.log"), 0, 0, Sharing::PRIVATE, false);
        // A file where the directory should be: writes fail until it is cleared.
        std::fs::write(&sub, b"").expect("block");
        log.write(b"y\n");
        assert!(log.error().is_some());
        std::fs::remove_file(&sub).expect("unblock");
        // Before the retry time, output is dropped without trying.
        log.write(b"dropped\n");
        assert!(log.error().is_some());
        log.lock().failing.as_mut().expect("failing").retry_at = Instant::now();
        log.write(b"z\n");
        assert_eq!(log.error(), None);
        assert_eq!(log.dropped(), 10);
        assert_eq!(std::fs::read(sub.join("p.log")).expect("log"), b"z\n");
    }

    #[test]
    fn a_full_disk_drops_and_counts_without_retrying_every_write() {
        // /dev/full: every write fails with ENOSPC, as on a full disk.
        let log = LogFile::open(PathBuf::from("/dev/full"), 0, 0, Sharing::PRIVATE, false);
        for _ in 0..10_000 {
            log.write(&[b'x'; 100]);
        }
        let error = log.error().expect("failing");
        assert!(error.contains("1000000 bytes dropped"), "{error}");
        assert_eq!(log.dropped(), 1_000_000);
        // One attempt, then nothing until the retry time: the delay has not grown.
        assert_eq!(log.lock().failing.as_ref().expect("failing").delay, FIRST_RETRY);
        for _ in 0..8 {
            log.lock().failing.as_mut().expect("failing").retry_at = Instant::now();
            log.write(b"y\n");
        }
        assert_eq!(log.lock().failing.as_ref().expect("failing").delay, MAX_RETRY, "retries back off");
    }

    #[test]
    fn rotated_files_never_pass_max_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.log");
        let max = 4096;
        let log = LogFile::open(path.clone(), max, 1000, Sharing::PRIVATE, false);
        let mut expected = Vec::new();
        let mut seed = 7u64;
        for i in 0..3000 {
            // Chunks of 1..10,000 bytes, lines of varied length, one line longer than a file.
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (seed >> 33) % 40 + if i == 1500 { 9000 } else { 0 };
            let mut chunk = vec![b'a' + (i % 26) as u8; len as usize];
            chunk.push(b'\n');
            if seed.is_multiple_of(3) {
                chunk.extend_from_slice(&chunk.clone());
            }
            log.write(&chunk);
            expected.extend_from_slice(&chunk);
        }
        let mut all = Vec::new();
        for n in (1..=1000).rev() {
            if let Ok(t) = std::fs::read(rotated(&path, n)) {
                assert!(t.len() as u64 <= max, "backup {n} has {} bytes", t.len());
                all.extend_from_slice(&t);
            }
        }
        all.extend_from_slice(&std::fs::read(&path).expect("current"));
        assert_eq!(all, expected, "every byte once, in order");
    }

    #[test]
    fn timestamps_prefix_every_line_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.log");
        let log = LogFile::open(path.clone(), 0, 0, Sharing::PRIVATE, true);
        log.write(b"one\ntw");
        log.write(b"o\nthree\n");
        let text = std::fs::read_to_string(path).expect("log");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for (line, want) in lines.iter().zip(["one", "two", "three"]) {
            let (stamp, rest) = line.split_once(' ').expect("stamp");
            assert!(humantime::parse_rfc3339(stamp).is_ok(), "{stamp}");
            assert_eq!(rest, want);
        }
    }

    #[test]
    fn stamped_tails_merge_by_time_and_unstamped_ones_do_not() {
        let out = b"old unstamped\n2026-01-01T00:00:01.000Z o1\n2026-01-01T00:00:03.000Z o3\n";
        let err = b"2026-01-01T00:00:02.000Z e2\n2026-01-01T00:00:03.000Z e3\n";
        let merged = merge(('o', &out[..]), ('e', &err[..]), true, 4);
        let runs: Vec<(char, String)> =
            merged.into_iter().map(|(k, t)| (k, String::from_utf8(t).expect("utf8"))).collect();
        assert_eq!(
            runs,
            [
                ('o', "2026-01-01T00:00:01.000Z o1\n".to_owned()),
                ('e', "2026-01-01T00:00:02.000Z e2\n".to_owned()),
                // A tie goes to stdout.
                ('o', "2026-01-01T00:00:03.000Z o3\n".to_owned()),
                ('e', "2026-01-01T00:00:03.000Z e3\n".to_owned()),
            ]
        );
        let plain = merge(('o', &b"a\nb\n"[..]), ('e', &b"c\n"[..]), false, 1);
        assert_eq!(plain, [('o', b"a\nb\n".to_vec()), ('e', b"c\n".to_vec())], "each keeps its own tail");
    }

    #[test]
    fn since_cuts_at_the_first_line_stamped_in_the_window() {
        let text = b"unstamped\n2026-01-01T00:00:01.000Z a\n2026-01-01T00:00:02.000Z b\ncontinued\n";
        let t = humantime::parse_rfc3339("2026-01-01T00:00:01.500Z").expect("time");
        assert_eq!(since(text, t), b"2026-01-01T00:00:02.000Z b\ncontinued\n");
        let later = humantime::parse_rfc3339("2027-01-01T00:00:00Z").expect("time");
        assert_eq!(since(text, later), b"");
        // The daemon's own log: microseconds and two spaces after the stamp.
        let own = b"2026-01-01T00:00:01.123456Z  INFO x\n";
        assert_eq!(since(own, t - Duration::from_secs(1)), own);
    }

    #[test]
    fn a_watched_line_fires_across_split_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogFile::open(dir.path().join("p.log"), 0, 0, Sharing::PRIVATE, true);
        log.write(b"listening on :80\n");
        let mut rx = log.watch_line("listening on");
        assert!(rx.try_recv().is_err(), "earlier lines do not count");
        let mut across_lines = log.watch_line("ab");
        for part in [&b"starting\nlist"[..], b"en", b"ing o", b"n :8080\n"] {
            assert!(rx.try_recv().is_err(), "not before the text is complete");
            log.write(part);
        }
        assert_eq!(rx.try_recv(), Ok(()));
        log.write(b"xa\nb\n");
        assert!(across_lines.try_recv().is_err(), "a text never spans two lines");
        log.write(b"a");
        log.write(b"b");
        assert_eq!(across_lines.try_recv(), Ok(()), "the line need not be ended");
        assert!(log.lock().watchers.is_none(), "no cost once every watch has fired");
    }

    #[test]
    fn a_watched_line_fires_across_rotation_and_long_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.log");
        let log = LogFile::open(path.clone(), 30, 2, Sharing::PRIVATE, false);
        let mut rx = log.watch_line("server ready");
        log.write(&[b'x'; 100_000]);
        log.write(b"serv");
        let carried = log.lock().watchers.as_ref().expect("watching").tail.len();
        assert!(carried < "server ready".len(), "the carried tail is bounded by the text, not the line");
        log.write(b"er re");
        log.write(b"ady\n");
        assert!(rotated(&path, 1).exists(), "the line was split by rotation");
        assert_eq!(rx.try_recv(), Ok(()));
    }

    #[test]
    fn a_dropped_watch_is_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogFile::open(dir.path().join("p.log"), 0, 0, Sharing::PRIVATE, false);
        drop(log.watch_line("never"));
        let kept = log.watch_line("one");
        log.write(b"two\n");
        assert_eq!(log.lock().watchers.as_ref().map(|w| w.list.len()), Some(1));
        drop(kept);
        log.write(b"three\n");
        assert!(log.lock().watchers.is_none());
    }

    #[test]
    fn deleted_log_is_recreated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("logs");
        let log = LogFile::open(sub.join("p.log"), 0, 0, Sharing::PRIVATE, false);
        log.write(b"before\n");
        std::fs::remove_dir_all(&sub).expect("remove");
        log.lock().checked = Instant::now() - UNLINK_CHECK;
        log.write(b"after\n");
        assert_eq!(std::fs::read(sub.join("p.log")).expect("recreated"), b"after\n");
    }

    #[test]
    fn symlink_in_place_of_log_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, b"").expect("target");
        let path = dir.path().join("p.log");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let log = LogFile::open(path, 0, 0, Sharing::PRIVATE, false);
        log.write(b"secret\n");
        assert!(log.error().is_some());
        assert_eq!(std::fs::read(&target).expect("target"), b"");
    }
}
