//! How many call sockets each peer address holds open, so one client cannot
//! take every session slot of the dev worker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open call sockets per peer address, capped.
#[derive(Debug)]
pub struct PeerConnections {
    cap: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct PeerSlot {
    peers: Arc<PeerConnections>,
    peer: IpAddr,
}

/// The peer already holds `open` connections, the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crowded {
    pub open: u32,
}

impl PeerConnections {
    pub fn new(cap: u32) -> Arc<PeerConnections> {
        Arc::new(PeerConnections {
            cap,
            open: Mutex::default(),
        })
    }

    /// A place for one more connection from `peer`, unless it is at the cap.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<PeerSlot, Crowded> {
        let mut open = self.lock();
        let count = open.entry(peer).or_insert(0);
        if *count >= self.cap {
            return Err(Crowded { open: *count });
        }
        *count += 1;
        Ok(PeerSlot {
            peers: self.clone(),
            peer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PeerSlot {
    pub fn peer(&self) -> IpAddr {
        self.peer
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.lock();
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));

    #[test]
    fn a_peer_at_the_cap_is_turned_away_until_one_of_its_connections_ends() {
        let peers = PeerConnections::new(2);
        let first = peers.admit(HOME).unwrap();
        let _second = peers.admit(HOME).unwrap();

        assert_eq!(peers.admit(HOME).unwrap_err(), Crowded { open: 2 });
        assert!(peers.admit(OTHER).is_ok(), "other peers are not affected");

        drop(first);
        assert_eq!(peers.lock().get(&HOME), Some(&1));
        assert!(peers.admit(HOME).is_ok());
    }

    #[test]
    fn a_peer_whose_connections_all_ended_leaves_no_entry() {
        let peers = PeerConnections::new(1);
        drop(peers.admit(OTHER).unwrap());
        assert!(peers.lock().is_empty());
    }
}

/// Upgrades a browser's WebSocket with frames capped at `max_frame`, and
/// hands it to `serve` when its address has a free slot; otherwise the
/// socket is closed with a policy violation that says why.
pub(super) fn upgrade_admitted<F, Fut>(
    ws: axum::extract::ws::WebSocketUpgrade,
    peer: std::net::SocketAddr,
    state: super::DevState,
    max_frame: usize,
    serve: F,
) -> axum::response::Response
where
    F: FnOnce(axum::extract::ws::WebSocket, super::DevState, PeerSlot) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let ws = ws.max_message_size(max_frame).max_frame_size(max_frame);
    match state.peers.admit(peer.ip()) {
        Ok(slot) => ws.on_upgrade(move |socket| serve(socket, state, slot)),
        Err(Crowded { open }) => {
            let reason = format!(
                "{open} calls already open from {}; hang one up first",
                peer.ip()
            );
            ws.on_upgrade(move |mut socket| async move {
                super::call::close(&mut socket, axum::extract::ws::close_code::POLICY, &reason)
                    .await;
            })
        }
    }
}
