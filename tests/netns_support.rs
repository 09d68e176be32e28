//! A private network for WebRTC tests with real clients: libwebrtc (the
//! LiveKit Python SDK, Chromium) leaves loopback interfaces out of ICE, so
//! such a test moves its thread into a new network namespace holding `lo`
//! and one veth pair whose one end has [`ADDRESS`]. The address exists only
//! there: no traffic leaves the test. Creating the namespace needs root
//! (CAP_SYS_ADMIN), as CI has.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::Command;

/// The one non-loopback address inside the namespace.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 1);

/// Moves this thread into a new network namespace with `lo` and a veth
/// pair whose one end holds [`ADDRESS`]. Children spawned from this thread
/// live there too; so do sockets this thread opens (run a current-thread
/// runtime on it).
pub fn private_network() {
    // SAFETY: unshare(2) with a flag only changes this thread's namespace.
    let status = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        status,
        0,
        "a private network namespace needs root (CAP_SYS_ADMIN): {}",
        std::io::Error::last_os_error()
    );
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["link", "add", "vg0", "type", "veth", "peer", "name", "vg1"],
        vec!["addr", "add", "10.203.0.1/24", "dev", "vg0"],
        vec!["link", "set", "vg1", "up"],
        vec!["link", "set", "vg0", "up"],
    ] {
        let status = Command::new("ip")
            .args(&args)
            .status()
            .expect("iproute2's ip runs");
        assert!(status.success(), "ip {args:?} failed");
    }
}
