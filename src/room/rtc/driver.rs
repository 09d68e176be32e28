//! The one tokio task per room that drives a [`RoomTransport`]: it binds a
//! UDP socket on each host address, resolves the STUN servers, feeds
//! datagrams, commands and timeouts in, sends what comes out and hands
//! events to the room. Nothing here decides anything; the core does.

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::candidates::{CandidateInit, IceServers, StunServer};
use super::event::{DataChannel, LocalTrack, RtcError, RtcEvent, Side};
use super::transport::{Answer, Offer, OfferChanges, Role, RoomTransport, TransportConfig};

/// Events waiting for the room; audio and data beyond this are dropped (and
/// counted) rather than stalling the network loop.
const EVENT_QUEUE: usize = 512;
const COMMAND_QUEUE: usize = 64;
/// A UDP datagram on a 1500-byte path fits; larger ones are truncated and
/// then refused by the stack.
const RECEIVE_BUFFER: usize = 2048;
const STUN_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

enum Command {
    AcceptOffer {
        side: Side,
        sdp: String,
        reply: oneshot::Sender<Result<Answer, RtcError>>,
    },
    CreateOffer {
        side: Side,
        changes: OfferChanges,
        reply: oneshot::Sender<Result<Option<Offer>, RtcError>>,
    },
    AcceptAnswer {
        side: Side,
        sdp: String,
        reply: oneshot::Sender<Result<(), RtcError>>,
    },
    RemoteCandidate {
        side: Side,
        candidate: CandidateInit,
        reply: oneshot::Sender<Result<(), RtcError>>,
    },
    SendAudio {
        track: LocalTrack,
        payload: Arc<[u8]>,
        duration: Duration,
    },
    SendData {
        side: Side,
        channel: DataChannel,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<(), RtcError>>,
    },
    Close(oneshot::Sender<()>),
}

/// Why the driver could not start or a command did not reach it.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("no UDP socket could be bound on any of {tried:?}: {last}")]
    NoSocket { tried: Vec<IpAddr>, last: String },
    #[error("no usable host address; pass loopback for tests on one machine")]
    NoHostAddress,
    #[error("the room's transport task has stopped")]
    Stopped,
    #[error(transparent)]
    Rtc(#[from] RtcError),
}

/// A handle on a running transport; clones share it.
#[derive(Clone, Debug)]
pub struct TransportHandle {
    commands: mpsc::Sender<Command>,
    local_addrs: Arc<[SocketAddr]>,
}

/// A running transport: the handle, its events and its task.
#[derive(Debug)]
pub struct RunningTransport {
    pub handle: TransportHandle,
    pub events: mpsc::Receiver<RtcEvent>,
    pub task: JoinHandle<()>,
}

/// Binds sockets on each address in `ips` (ports chosen by the system) —
/// one per side for a participant, one shared by both sides for the
/// server end — resolves the STUN servers of `ice_servers` (the
/// JoinResponse's, see [`super::ice_servers`]) in the background, and
/// starts the task.
pub async fn spawn(
    config: TransportConfig,
    ips: &[IpAddr],
    ice_servers: IceServers,
) -> Result<RunningTransport, DriverError> {
    if ips.is_empty() {
        return Err(DriverError::NoHostAddress);
    }
    if ice_servers.turn_only() {
        tracing::warn!(
            turn_servers = ice_servers.turn_ignored,
            "the server offers only TURN relays and voxguard has no TURN client: \
             a caller whose network needs a relay will get no media"
        );
    }
    let stun_servers = ice_servers.stun;
    let owners: &[Option<Side>] = match config.role {
        Role::Participant => &[Some(Side::Subscriber), Some(Side::Publisher)],
        Role::Server => &[None],
    };
    let mut sockets = Vec::new();
    let mut bound = Vec::new();
    let mut last = String::new();
    for ip in ips {
        for owner in owners {
            match UdpSocket::bind(SocketAddr::new(*ip, 0)).await {
                Ok(socket) => match socket.local_addr() {
                    Ok(addr) => {
                        sockets.push((socket, addr));
                        bound.push((addr, *owner));
                    }
                    Err(error) => last = error.to_string(),
                },
                Err(error) => {
                    tracing::debug!(%ip, %error, "cannot bind a media socket on this address");
                    last = error.to_string();
                }
            }
        }
    }
    if sockets.is_empty() {
        return Err(DriverError::NoSocket {
            tried: ips.to_vec(),
            last,
        });
    }
    let now = Instant::now().into_std();
    let mut transport = RoomTransport::new(config, now);
    for (addr, owner) in bound {
        transport.add_host(owner, addr, now)?;
    }
    let local_addrs: Arc<[SocketAddr]> = sockets.iter().map(|(_, a)| *a).collect();
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
    let task = tokio::spawn(run(transport, sockets, stun_servers, command_rx, event_tx));
    Ok(RunningTransport {
        handle: TransportHandle {
            commands,
            local_addrs,
        },
        events,
        task,
    })
}

impl TransportHandle {
    /// The host sockets' addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, RtcError>>) -> Command,
    ) -> Result<T, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| DriverError::Stopped)?;
        Ok(answer.await.map_err(|_| DriverError::Stopped)??)
    }

    pub async fn accept_offer(&self, side: Side, sdp: String) -> Result<Answer, DriverError> {
        self.ask(|reply| Command::AcceptOffer { side, sdp, reply })
            .await
    }

    pub async fn create_offer(
        &self,
        side: Side,
        changes: OfferChanges,
    ) -> Result<Option<Offer>, DriverError> {
        self.ask(|reply| Command::CreateOffer {
            side,
            changes,
            reply,
        })
        .await
    }

    pub async fn accept_answer(&self, side: Side, sdp: String) -> Result<(), DriverError> {
        self.ask(|reply| Command::AcceptAnswer { side, sdp, reply })
            .await
    }

    pub async fn add_remote_candidate(
        &self,
        side: Side,
        candidate: CandidateInit,
    ) -> Result<(), DriverError> {
        self.ask(|reply| Command::RemoteCandidate {
            side,
            candidate,
            reply,
        })
        .await
    }

    /// Queues one Opus packet; paced playout calls this every 20 ms.
    /// Refusals (not connected yet) are logged by the task, not returned,
    /// so playout never waits on the network loop.
    pub async fn send_audio(
        &self,
        track: LocalTrack,
        payload: Arc<[u8]>,
        duration: Duration,
    ) -> Result<(), DriverError> {
        self.commands
            .send(Command::SendAudio {
                track,
                payload,
                duration,
            })
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// [`TransportHandle::send_audio`] without waiting: a full command
    /// queue drops the packet, as a congested link would.
    pub fn try_send_audio(
        &self,
        track: LocalTrack,
        payload: Arc<[u8]>,
        duration: Duration,
    ) -> Result<(), DriverError> {
        self.commands
            .try_send(Command::SendAudio {
                track,
                payload,
                duration,
            })
            .map_err(|_| DriverError::Stopped)
    }

    /// Queues bytes on a data channel without waiting for the outcome;
    /// packets queued this way go out in order. A full command queue
    /// refuses them.
    pub fn try_send_data(
        &self,
        side: Side,
        channel: DataChannel,
        payload: Vec<u8>,
    ) -> Result<(), DriverError> {
        let (reply, _) = oneshot::channel();
        self.commands
            .try_send(Command::SendData {
                side,
                channel,
                payload,
                reply,
            })
            .map_err(|_| DriverError::Stopped)
    }

    pub async fn send_data(
        &self,
        side: Side,
        channel: DataChannel,
        payload: Vec<u8>,
    ) -> Result<(), DriverError> {
        self.ask(|reply| Command::SendData {
            side,
            channel,
            payload,
            reply,
        })
        .await
    }

    /// Closes both connections and waits for the task to flush them.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn resolve(servers: Vec<StunServer>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for server in servers {
        let lookup = tokio::net::lookup_host((server.host.as_str(), server.port));
        match tokio::time::timeout(STUN_RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => out.extend(addrs),
            Ok(Err(error)) => {
                tracing::debug!(host = %server.host, %error, "STUN server does not resolve")
            }
            Err(_) => tracing::debug!(host = %server.host, "STUN server lookup timed out"),
        }
    }
    out
}

async fn run(
    mut transport: RoomTransport,
    sockets: Vec<(UdpSocket, SocketAddr)>,
    stun_servers: Vec<StunServer>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<RtcEvent>,
) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    let mut dropped_events: u64 = 0;
    let mut resolving = Some(tokio::spawn(resolve(stun_servers)));
    let mut closing: Option<oneshot::Sender<()>> = None;
    loop {
        while let Some(transmit) = transport.poll_transmit() {
            let socket = sockets
                .iter()
                .find(|(_, addr)| *addr == transmit.source)
                .or_else(|| sockets.first());
            if let Some((socket, _)) = socket
                && let Err(error) = socket
                    .send_to(&transmit.contents, transmit.destination)
                    .await
            {
                tracing::debug!(destination = %transmit.destination, %error, "media send failed");
            }
        }
        while let Some(event) = transport.poll_event() {
            match events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => match event {
                    RtcEvent::Audio { .. } | RtcEvent::Data { .. } => dropped_events += 1,
                    other => {
                        if events.send(other).await.is_err() {
                            return;
                        }
                    }
                },
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        if let Some(done) = closing.take() {
            if dropped_events > 0 {
                tracing::warn!(dropped_events, "room fell behind the media transport");
            }
            let _ = done.send(());
            return;
        }
        let deadline = transport
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        let received = poll_fn(|cx| {
            for (socket, addr) in &sockets {
                let mut read = ReadBuf::new(&mut buffer);
                if let Poll::Ready(result) = socket.poll_recv_from(cx, &mut read) {
                    return Poll::Ready((result, read.filled().len(), *addr));
                }
            }
            Poll::Pending
        });
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(command) => apply(&mut transport, command, &mut closing),
                None => {
                    transport.close(Instant::now().into_std());
                    closing = Some(oneshot::channel().0);
                }
            },
            (result, len, local) = received => {
                let now = Instant::now().into_std();
                match result {
                    Ok(source) => transport.handle_datagram(source, local, &buffer[..len], now),
                    // ICMP unreachable from a peer that went away, reported
                    // on the next read: the consent checks will notice.
                    Err(error) => tracing::trace!(%error, "media socket read error"),
                }
            }
            resolved = async { resolving.as_mut().expect("guarded").await }, if resolving.is_some() => {
                resolving = None;
                if let Ok(resolved) = resolved {
                    transport.set_stun_servers(resolved, Instant::now().into_std());
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                transport.handle_timeout(Instant::now().into_std());
            }
        }
    }
}

fn apply(
    transport: &mut RoomTransport,
    command: Command,
    closing: &mut Option<oneshot::Sender<()>>,
) {
    let now = Instant::now().into_std();
    match command {
        Command::AcceptOffer { side, sdp, reply } => {
            let _ = reply.send(transport.accept_offer(side, &sdp, now));
        }
        Command::CreateOffer {
            side,
            changes,
            reply,
        } => {
            let _ = reply.send(transport.create_offer(side, &changes, now));
        }
        Command::AcceptAnswer { side, sdp, reply } => {
            let _ = reply.send(transport.accept_answer(side, &sdp, now));
        }
        Command::RemoteCandidate {
            side,
            candidate,
            reply,
        } => {
            let _ = reply.send(transport.add_remote_candidate(side, &candidate, now));
        }
        Command::SendAudio {
            track,
            payload,
            duration,
        } => {
            if let Err(error) = transport.send_audio(track, payload, duration, now) {
                tracing::trace!(%error, "audio packet not sent");
            }
        }
        Command::SendData {
            side,
            channel,
            payload,
            reply,
        } => {
            let _ = reply.send(transport.send_data(side, channel, &payload, now));
        }
        Command::Close(done) => {
            transport.close(now);
            *closing = Some(done);
        }
    }
}
