//! The page's end of a spoken call: one WebRTC peer connection with the
//! browser, served by the same server-role transport the LiveKit stand-in
//! gives each of its participants (ICE-lite, one UDP socket per address,
//! Opus only). The browser offers one `sendrecv` audio section (its
//! microphone) and the server answers; the agent's voice goes back on the
//! same section.
//!
//! Candidates are the host's real interface addresses: Chromium leaves
//! loopback out of ICE, so a browser on this machine reaches the server
//! through one of them. The answer carries them, and an ICE-lite server
//! needs no candidate from the browser: it answers the browser's checks
//! from wherever they come.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::room::rtc::driver::{self, DriverError, TransportHandle};
use crate::room::rtc::{
    LocalTrack, Loopback, Role, RtcEvent, Side, TransportConfig, host_addresses,
};

/// The browser's offer arrives on the side a LiveKit server answers on.
const BROWSER_SIDE: Side = Side::Publisher;

/// Why the browser's connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LegError {
    #[error("could not list this machine's network interfaces: {0}")]
    Interfaces(std::io::Error),
    #[error(
        "this machine has no network interface but loopback, and browsers leave loopback out of WebRTC; bring up a network interface"
    )]
    NoAddress,
    #[error("the call's media could not start: {0}")]
    Transport(#[from] DriverError),
    #[error("the browser's offer was refused: {0}")]
    Offer(DriverError),
    #[error("the browser's offer has no microphone track to answer on")]
    NoAudio,
}

/// A browser's peer connection, answered and running.
pub struct BrowserLeg {
    handle: TransportHandle,
    pub events: mpsc::Receiver<RtcEvent>,
    task: tokio::task::JoinHandle<()>,
    /// Where the agent's voice goes: the browser's own audio section.
    track: LocalTrack,
    /// The answer to send the browser.
    pub answer: String,
}

impl BrowserLeg {
    /// Starts a transport on the host's interfaces and answers `offer`.
    pub async fn answer(offer: String) -> Result<BrowserLeg, LegError> {
        let ips = browser_addresses()?;
        let running =
            driver::spawn(TransportConfig::new(Role::Server), &ips, Default::default()).await?;
        let answer = match running.handle.accept_offer(BROWSER_SIDE, offer).await {
            Ok(answer) => answer,
            Err(error) => {
                running.handle.close().await;
                running.task.abort();
                return Err(LegError::Offer(error));
            }
        };
        let Some(track) = answer.tracks.first().copied() else {
            running.handle.close().await;
            running.task.abort();
            return Err(LegError::NoAudio);
        };
        Ok(BrowserLeg {
            handle: running.handle,
            events: running.events,
            task: running.task,
            track,
            answer: answer.sdp,
        })
    }

    /// Queues one of the agent's Opus packets for the browser; a full
    /// queue drops it, as a congested link would.
    pub fn send_audio(&self, payload: Arc<[u8]>, duration: Duration) {
        let _ = self.handle.try_send_audio(self.track, payload, duration);
    }

    /// Closes the connection (DTLS close_notify, SCTP shutdown).
    pub async fn close(self) {
        self.handle.close().await;
        self.task.abort();
    }
}

/// What an event of the browser's connection means for the call.
#[derive(Debug)]
pub enum LegEvent {
    /// One Opus packet of the browser's microphone.
    Microphone(Arc<[u8]>),
    Connected,
    /// The connection is gone for good.
    Failed(String),
    Other,
}

impl From<RtcEvent> for LegEvent {
    fn from(event: RtcEvent) -> Self {
        match event {
            RtcEvent::Audio { packet, .. } => LegEvent::Microphone(packet.payload),
            RtcEvent::Connected(_) => LegEvent::Connected,
            RtcEvent::Failed { reason, .. } => LegEvent::Failed(reason.to_string()),
            RtcEvent::Refused { error, .. } => {
                tracing::debug!(%error, "browser media input refused");
                LegEvent::Other
            }
            _ => LegEvent::Other,
        }
    }
}

/// The addresses a browser on this machine can reach: every interface but
/// loopback. With none, loopback is the last resort (a browser that allows
/// it, such as Firefox, still connects), and the caller is told why others
/// will not.
fn browser_addresses() -> Result<Vec<IpAddr>, LegError> {
    let ips = host_addresses(Loopback::Exclude).map_err(LegError::Interfaces)?;
    if !ips.is_empty() {
        return Ok(ips);
    }
    let loopback = host_addresses(Loopback::Include).map_err(LegError::Interfaces)?;
    if loopback.is_empty() {
        return Err(LegError::NoAddress);
    }
    tracing::warn!("{}", LegError::NoAddress);
    Ok(loopback)
}
