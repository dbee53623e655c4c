//! Noticing that the reader of our output has gone, without writing to it.
//!
//! Linux reports POLLERR on a pipe's write end once the read end is closed, and POLLHUP for a
//! socket whose peer closed or a terminal that hung up; FreeBSD and illumos report POLLHUP.
//! All of them report these even when no event was asked for, so `poll` with no events waits
//! for exactly that. macOS's `poll` reports nothing for a descriptor asked for no events: there
//! a kqueue write filter reports EV_EOF when the reader goes, and a low-water mark no buffer
//! reaches keeps it from firing merely because there is room to write.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

#[cfg(not(target_os = "macos"))]
pub fn wait_closed(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 };
    loop {
        // SAFETY: one valid pollfd; -1 waits without a timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Ok(());
        }
    }
}

#[cfg(target_os = "macos")]
pub fn wait_closed(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: kqueue takes no arguments; the descriptor is closed below.
    let kq = unsafe { libc::kqueue() };
    if kq < 0 {
        return Err(io::Error::last_os_error());
    }
    let change = libc::kevent {
        ident: fd.as_raw_fd() as usize,
        filter: libc::EVFILT_WRITE,
        flags: libc::EV_ADD | libc::EV_CLEAR,
        fflags: libc::NOTE_LOWAT,
        data: isize::MAX,
        udata: std::ptr::null_mut(),
    };
    let result = loop {
        let mut event: libc::kevent = unsafe { std::mem::zeroed() };
        // SAFETY: one change and room for one event, both valid for the call.
        let n = unsafe { libc::kevent(kq, &change, 1, &mut event, 1, std::ptr::null()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break Err(e);
        }
        if n > 0 && event.flags & (libc::EV_EOF | libc::EV_ERROR) != 0 {
            break Ok(());
        }
        // A terminal may ignore the low-water mark: do not spin while it stays writable.
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // SAFETY: kq is ours and closed once.
    unsafe { libc::close(kq) };
    result
}
