//! Receiving one datagram on a Unix socket together with the sender's pid, as the kernel saw it.
//!
//! The `recvmsg` and the walk over control messages are the same everywhere; only the socket
//! option that asks for credentials and the layout of what comes back differ, and those live in
//! the OS modules (`enable_datagram_credentials`, `dgram_control_len`, `cmsg_sender_pid`).

use crate::os;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// What [`recv_datagram_with_pid`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedDatagram {
    /// Bytes written to the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer; the rest is lost.
    pub truncated: bool,
    /// The sending process, as the kernel recorded it at `send` time; `None` where the OS does
    /// not say (see [`DATAGRAM_SENDER_PID`]) or the sender is in another pid namespace.
    pub pid: Option<i32>,
}

/// Whether [`recv_datagram_with_pid`] can report senders' pids on this OS: Linux
/// (`SCM_CREDENTIALS`), FreeBSD 13 and later (`SCM_CREDS2`) and illumos (`SCM_UCRED`) can;
/// macOS has no per-datagram credentials.
pub const DATAGRAM_SENDER_PID: bool = os::DATAGRAM_SENDER_PID;

/// Asks the kernel to attach the sender's credentials to every datagram `fd` receives. Returns
/// whether it will: `false` on macOS, and on FreeBSD before 13 (`LOCAL_CREDS_PERSISTENT`
/// is what carries a pid). Call once, before the first receive.
pub fn enable_datagram_credentials(fd: BorrowedFd<'_>) -> io::Result<bool> {
    os::enable_datagram_credentials(fd)
}

/// Receives one datagram into `buf` without blocking on a non-blocking socket
/// (`ErrorKind::WouldBlock` when there is none), with the sender's pid when
/// [`enable_datagram_credentials`] was called and the OS reports it.
///
/// Descriptors passed along (`SCM_RIGHTS`, as `sd_notify_barrier` and `FDSTORE=1` send) are
/// closed at once: svc keeps none, and closing is what releases a sender waiting on a barrier.
pub fn recv_datagram_with_pid(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<ReceivedDatagram> {
    // u64 elements give the alignment cmsghdr needs.
    let mut control = vec![0u64; os::dgram_control_len().div_ceil(8)];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain data; the zeroed fields (no name, no flags) are valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // The field is usize, u32 or c_int depending on the OS; the value is small.
    msg.msg_controllen = (control.len() * 8) as _;
    // SAFETY: msg points at iov and control, which outlive the call and have the lengths given.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, os::DGRAM_RECV_FLAGS) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut pid = None;
    // SAFETY: the kernel filled msg_control up to msg_controllen; CMSG_FIRSTHDR/NXTHDR stay
    // within it and return NULL at its end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: cmsg is a header inside the control buffer (see above).
        let (level, kind, total) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len as usize) };
        // SAFETY: as above; CMSG_DATA only computes an address.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        let data_len = total.saturating_sub(data as usize - cmsg as usize);
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for k in 0..data_len / size_of::<libc::c_int>() {
                // SAFETY: within the message's data; descriptors may be unaligned on some OSes.
                let received = unsafe { data.cast::<libc::c_int>().add(k).read_unaligned() };
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                unsafe { libc::close(received) };
            }
        } else if let Some(p) = os::cmsg_sender_pid(level, kind, data, data_len) {
            pid = Some(p).filter(|&p| p > 0);
        }
        // SAFETY: see CMSG_FIRSTHDR above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(ReceivedDatagram { len: n as usize, truncated: msg.msg_flags & libc::MSG_TRUNC != 0, pid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    fn bound() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.sock");
        let sock = UnixDatagram::bind(&path).expect("bind");
        sock.set_nonblocking(true).expect("nonblocking");
        (dir, path, sock)
    }

    #[test]
    fn reports_own_pid_and_truncation() {
        let (_dir, path, sock) = bound();
        let enabled = enable_datagram_credentials(sock.as_fd()).expect("enable");
        let mut buf = [0u8; 16];
        assert_eq!(recv_datagram_with_pid(sock.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);

        let client = UnixDatagram::unbound().expect("client");
        client.send_to(b"READY=1", &path).expect("send");
        let got = recv_datagram_with_pid(sock.as_fd(), &mut buf).expect("recv");
        assert_eq!(&buf[..got.len], b"READY=1");
        assert!(!got.truncated);
        if enabled {
            assert_eq!(got.pid, Some(std::process::id() as i32));
        } else {
            assert_eq!(got.pid, None);
        }

        client.send_to(&[b'x'; 40], &path).expect("send");
        let got = recv_datagram_with_pid(sock.as_fd(), &mut buf).expect("recv");
        assert!(got.truncated);
        assert_eq!(got.len, buf.len());
    }

    #[test]
    fn sender_pid_support_matches_the_os() {
        assert_eq!(
            DATAGRAM_SENDER_PID,
            cfg!(any(target_os = "linux", target_os = "freebsd", target_os = "illumos", target_os = "solaris"))
        );
    }

    /// A descriptor passed along must not stay open in the receiver: the write end of a pipe is
    /// sent and dropped here, so the read end sees EOF only if the received copy was closed.
    #[test]
    fn passed_descriptors_are_closed() {
        let (_dir, path, sock) = bound();
        let _ = enable_datagram_credentials(sock.as_fd());
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        let client = UnixDatagram::unbound().expect("client");
        client.connect(&path).expect("connect");
        send_with_fd(&client, b"BARRIER=1", writer.as_raw_fd());
        drop(writer);
        let mut buf = [0u8; 64];
        let got = recv_datagram_with_pid(sock.as_fd(), &mut buf).expect("recv");
        assert_eq!(&buf[..got.len], b"BARRIER=1");
        let mut rest = Vec::new();
        // Blocks forever if the received copy of the write end leaked.
        std::io::Read::read_to_end(&mut reader, &mut rest).expect("read");
        assert!(rest.is_empty());
    }

    fn send_with_fd(sock: &UnixDatagram, data: &[u8], fd: libc::c_int) {
        let space = unsafe { libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) } as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
        // SAFETY: as in recv_datagram_with_pid; one SCM_RIGHTS message with one descriptor.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as _;
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>().write_unaligned(fd);
            assert!(libc::sendmsg(sock.as_raw_fd(), &msg, 0) >= 0, "sendmsg: {}", io::Error::last_os_error());
        }
    }
}
