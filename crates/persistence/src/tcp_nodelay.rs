//! sqlx 0.9.0 no longer sets TCP_NODELAY on its TCP sockets (transact-rs/sqlx#4335; fixed
//! upstream by #4336, not yet released). Without it Nagle's algorithm meets PostgreSQL's
//! delayed ACKs and an exchange of several small messages stalls for 40 ms: over TCP the
//! bench's postbacks ran at 943/s, over the Unix socket at 4,229/s. Until a release has the
//! fix, each new pool connection sets it on the process's sockets to the database's port.
//! Delete this module then.

/// Sets TCP_NODELAY on every TCP socket of this process whose peer port is `port`.
#[cfg(target_os = "linux")]
pub(crate) fn set_on_sockets_to(port: u16) {
    use std::os::fd::{BorrowedFd, RawFd};

    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    for entry in entries.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|name| name.parse::<RawFd>().ok()) else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is borrowed only for the three system calls below. Should it
        // be closed meanwhile they fail (EBADF); should its number be reused, they act on that
        // new descriptor only if it too is a stream socket to the database's port.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let to_database =
            socket.peer_addr().ok().and_then(|addr| addr.as_socket()).is_some_and(|a| a.port() == port);
        if to_database && socket.r#type().is_ok_and(|kind| kind == socket2::Type::STREAM) {
            let _ = socket.set_tcp_nodelay(true);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_on_sockets_to(_port: u16) {}
