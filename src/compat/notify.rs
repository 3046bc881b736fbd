//! systemd's readiness protocol (`Type=notify`): one datagram to `$NOTIFY_SOCKET`, a path
//! or, with a leading `@`, an abstract socket. Without the variable nothing happens.

use std::os::unix::net::UnixDatagram;

/// Send `state` (e.g. `READY=1`) to the service manager. `Ok(false)` when not run by one.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), &target)?;
    }
    Ok(true)
}

/// Tell the service manager the server is ready (upstream's `NotifySystemReady`).
pub fn ready() -> std::io::Result<bool> {
    notify(&format!("READY=1\nMAINPID={}", std::process::id()))
}

/// Tell the service manager the server is stopping.
pub fn stopping() -> std::io::Result<bool> {
    notify("STOPPING=1")
}
