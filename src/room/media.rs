//! The room's media, as the official SDK negotiates it with a LiveKit
//! server: the server offers the subscriber connection (other participants'
//! audio and its data channels) and the participant answers; the
//! participant asks to publish one audio track (`AddTrackRequest`), and
//! once the server has accepted it (`TrackPublished`) offers the publisher
//! connection with that track and the `_reliable`/`_lossy` channels.
//! Candidates trickle both ways over the signal socket.
//!
//! [`MediaTask`] is the part the room's task drives: it turns signal
//! messages and transport events into transport commands and signal
//! requests. [`MediaLink`] is the part every handle shares: sending audio
//! and data, and the receivers of what other participants send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as SignalRequest;
use proto::signal_response::Message as SignalResponse;
use tokio::sync::{mpsc, watch};

use super::data::{
    ReaderLimits, Received, StreamReader, TOPIC_CHAT, TextMessage, decode_packet, encode_packet,
    new_stream_id,
};
use super::rtc::driver::{self, DriverError, TransportHandle};
use super::rtc::{
    AudioPacket, CandidateInit, DataChannel, LocalTrack, Loopback, Mid, OfferChanges, Role,
    RtcEvent, Side, TransportConfig, host_addresses, ice_servers,
};

/// Audio packets waiting for the voice pipeline (about 1.3 s at 20 ms);
/// beyond that they are dropped and counted, never queued without bound.
const AUDIO_QUEUE: usize = 64;
/// Whole texts (chat messages) waiting for the agent.
const TEXT_QUEUE: usize = 32;
/// How long data sent before the publisher's channel opened waits for it.
const CHANNEL_OPEN_WAIT: Duration = Duration::from_secs(3);

/// How a room connection handles media.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomOptions {
    /// `None`: signal only (no WebRTC); offers from the server are ignored.
    pub media: Option<MediaOptions>,
}

impl RoomOptions {
    /// Hear the room and publish one audio track.
    pub fn with_media(media: MediaOptions) -> RoomOptions {
        RoomOptions { media: Some(media) }
    }
}

/// The media side of a room connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOptions {
    /// Loopback host candidates: only for a server on the same machine.
    pub loopback: Loopback,
    /// The published audio track's name.
    pub track_name: String,
}

impl Default for MediaOptions {
    fn default() -> Self {
        MediaOptions {
            loopback: Loopback::Exclude,
            track_name: "agent-voice".into(),
        }
    }
}

/// One Opus packet from another participant's audio track.
#[derive(Debug, Clone)]
pub struct RemoteAudio {
    /// The sender's identity (empty if the server has not named it yet).
    pub participant: String,
    /// The track's sid (`TR_...`).
    pub track_sid: String,
    /// A small number standing for the track in this connection (its mid).
    pub stream: u32,
    pub packet: AudioPacket,
}

/// What other participants send: audio packets and whole texts.
#[derive(Debug)]
pub struct MediaInbound {
    pub audio: mpsc::Receiver<RemoteAudio>,
    pub texts: mpsc::Receiver<TextMessage>,
}

/// Why the media part of a room could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("could not list the host's network interfaces: {0}")]
    Interfaces(std::io::Error),
    #[error(transparent)]
    Transport(#[from] DriverError),
}

/// Counters of what the room dropped rather than queue without bound.
#[derive(Debug, Default)]
pub struct MediaDrops {
    pub audio_in: std::sync::atomic::AtomicU64,
    pub audio_out: std::sync::atomic::AtomicU64,
    pub data_out: std::sync::atomic::AtomicU64,
}

/// The handles' side of the media.
pub(super) struct MediaLink {
    pub handle: TransportHandle,
    /// The published track, once the server answered the publisher offer.
    pub track: watch::Receiver<Option<(LocalTrack, String)>>,
    /// Whether the publisher's reliable channel is open.
    pub reliable_open: watch::Receiver<bool>,
    pub inbound: Mutex<Option<MediaInbound>>,
    pub drops: Arc<MediaDrops>,
}

impl MediaLink {
    /// Queues one Opus packet on the published track; dropped (and counted)
    /// before the track is negotiated.
    pub fn send_audio(&self, payload: &[u8], duration: Duration) -> bool {
        let track = self.track.borrow().as_ref().map(|(t, _)| *t);
        let Some(track) = track else {
            self.count(&self.drops.audio_out);
            return false;
        };
        // Never wait on the network loop: playout keeps its own pace.
        let sent = self
            .handle
            .try_send_audio(track, Arc::from(payload), duration)
            .is_ok();
        if !sent {
            self.count(&self.drops.audio_out);
        }
        sent
    }

    /// Sends `packets` in order on the publisher's reliable channel,
    /// waiting (bounded) for it to open.
    pub async fn send_data(&self, packets: &[proto::DataPacket]) -> bool {
        let mut open = self.reliable_open.clone();
        let opened = tokio::time::timeout(CHANNEL_OPEN_WAIT, open.wait_for(|o| *o))
            .await
            .is_ok_and(|r| r.is_ok());
        if !opened {
            self.count(&self.drops.data_out);
            return false;
        }
        let mut bytes = Vec::new();
        for packet in packets {
            bytes.clear();
            if let Err(error) = encode_packet(packet, &mut bytes) {
                tracing::warn!(%error, "data packet not sent");
                self.count(&self.drops.data_out);
                return false;
            }
            if let Err(error) = self
                .handle
                .send_data(Side::Publisher, DataChannel::Reliable, bytes.clone())
                .await
            {
                tracing::debug!(%error, "data packet not sent");
                self.count(&self.drops.data_out);
                return false;
            }
        }
        true
    }

    fn count(&self, counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The room task's side of the media.
pub(super) struct MediaTask {
    handle: TransportHandle,
    pub events: mpsc::Receiver<RtcEvent>,
    task: tokio::task::JoinHandle<()>,
    options: MediaOptions,
    /// The AddTrackRequest's client id, until the server published it.
    pending_cid: Option<String>,
    /// The publisher offer's track, until the server answered it.
    offered: Option<(LocalTrack, String)>,
    track: watch::Sender<Option<(LocalTrack, String)>>,
    reliable_open: watch::Sender<bool>,
    /// Remote tracks on the subscriber connection: mid → (stream id, track sid).
    remote: HashMap<Mid, (String, String)>,
    /// Participant sid → identity, from the room's participant records.
    identities: HashMap<String, String>,
    /// Track sid → participant identity.
    track_owners: HashMap<String, String>,
    reader: StreamReader,
    audio: mpsc::Sender<RemoteAudio>,
    texts: mpsc::Sender<TextMessage>,
    drops: Arc<MediaDrops>,
}

/// Starts the transport for a room whose JoinResponse is `join`.
pub(super) async fn start(
    options: MediaOptions,
    join: &proto::JoinResponse,
) -> Result<(MediaTask, MediaLink), MediaError> {
    let ips = host_addresses(options.loopback).map_err(MediaError::Interfaces)?;
    let running = driver::spawn(
        TransportConfig::new(Role::Participant),
        &ips,
        ice_servers(&join.ice_servers),
    )
    .await?;
    let (track_tx, track_rx) = watch::channel(None);
    let (open_tx, open_rx) = watch::channel(false);
    let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
    let (texts_tx, texts_rx) = mpsc::channel(TEXT_QUEUE);
    let drops = Arc::new(MediaDrops::default());
    let mut task = MediaTask {
        handle: running.handle.clone(),
        events: running.events,
        task: running.task,
        options,
        pending_cid: None,
        offered: None,
        track: track_tx,
        reliable_open: open_tx,
        remote: HashMap::new(),
        identities: HashMap::new(),
        track_owners: HashMap::new(),
        reader: StreamReader::new(ReaderLimits::default()),
        audio: audio_tx,
        texts: texts_tx,
        drops: drops.clone(),
    };
    for participant in &join.other_participants {
        task.learn(participant);
    }
    let link = MediaLink {
        handle: running.handle,
        track: track_rx,
        reliable_open: open_rx,
        inbound: Mutex::new(Some(MediaInbound {
            audio: audio_rx,
            texts: texts_rx,
        })),
        drops,
    };
    Ok((task, link))
}

impl MediaTask {
    /// The first request: ask the server to accept an audio track.
    pub fn publish_request(&mut self) -> SignalRequest {
        let cid = format!("TR_{}", new_stream_id().replace('-', ""));
        self.pending_cid = Some(cid.clone());
        SignalRequest::AddTrack(proto::AddTrackRequest {
            cid,
            name: self.options.track_name.clone(),
            r#type: proto::TrackType::Audio as i32,
            source: proto::TrackSource::Microphone as i32,
            ..Default::default()
        })
    }

    /// Remembers who owns which tracks (participant updates).
    pub fn learn(&mut self, participant: &proto::ParticipantInfo) {
        if participant.state == proto::participant_info::State::Disconnected as i32 {
            self.identities.remove(&participant.sid);
            self.track_owners
                .retain(|_, who| *who != participant.identity);
            return;
        }
        self.identities
            .insert(participant.sid.clone(), participant.identity.clone());
        for track in &participant.tracks {
            self.track_owners
                .insert(track.sid.clone(), participant.identity.clone());
        }
    }

    /// Acts on a media signal message; returns the requests to send.
    pub async fn on_signal(&mut self, message: &SignalResponse) -> Vec<SignalRequest> {
        match message {
            SignalResponse::Offer(offer) => {
                match self
                    .handle
                    .accept_offer(Side::Subscriber, offer.sdp.clone())
                    .await
                {
                    Ok(answer) => vec![SignalRequest::Answer(proto::SessionDescription {
                        r#type: "answer".into(),
                        sdp: answer.sdp,
                        id: offer.id,
                        ..Default::default()
                    })],
                    Err(error) => {
                        tracing::warn!(%error, "the server's subscriber offer was refused");
                        Vec::new()
                    }
                }
            }
            SignalResponse::Answer(answer) => {
                match self
                    .handle
                    .accept_answer(Side::Publisher, answer.sdp.clone())
                    .await
                {
                    Ok(()) => {
                        if let Some(track) = self.offered.take() {
                            self.track.send_replace(Some(track));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the server's publisher answer was refused")
                    }
                }
                Vec::new()
            }
            SignalResponse::Trickle(trickle) => {
                let side = Side::of_signal_target(trickle.target);
                let added = match CandidateInit::from_json(&trickle.candidate_init) {
                    Ok(candidate) => self
                        .handle
                        .add_remote_candidate(side, candidate)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                if let Err(error) = added {
                    tracing::warn!(%error, side = side.as_str(), "trickled candidate refused");
                }
                Vec::new()
            }
            SignalResponse::TrackPublished(published) => {
                if self.pending_cid.as_deref() != Some(published.cid.as_str()) {
                    return Vec::new();
                }
                self.pending_cid = None;
                let track_sid = published
                    .track
                    .as_ref()
                    .map(|t| t.sid.clone())
                    .unwrap_or_default();
                let stream_id = format!("{}|{}", self.options.track_name, track_sid);
                let changes = OfferChanges::publish_audio(&stream_id, &published.cid);
                match self.handle.create_offer(Side::Publisher, changes).await {
                    Ok(Some(offer)) => {
                        if let Some(track) = offer.tracks.first() {
                            self.offered = Some((*track, track_sid));
                        }
                        vec![SignalRequest::Offer(proto::SessionDescription {
                            r#type: "offer".into(),
                            sdp: offer.sdp,
                            ..Default::default()
                        })]
                    }
                    Ok(None) => Vec::new(),
                    Err(error) => {
                        tracing::warn!(%error, "could not offer the agent's audio track");
                        Vec::new()
                    }
                }
            }
            SignalResponse::Update(update) => {
                for participant in &update.participants {
                    self.learn(participant);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Acts on a transport event; returns a signal request to send, or why
    /// the media is lost for good.
    pub async fn on_event(&mut self, event: RtcEvent) -> Result<Option<SignalRequest>, String> {
        match event {
            RtcEvent::LocalCandidate { side, candidate } => {
                return Ok(Some(SignalRequest::Trickle(side.trickle(&candidate))));
            }
            RtcEvent::TrackAdded {
                side: Side::Subscriber,
                track,
            } => {
                self.remote
                    .insert(track.mid, (track.stream_id, track.track_id));
            }
            RtcEvent::TrackRemoved {
                side: Side::Subscriber,
                mid,
            } => {
                self.remote.remove(&mid);
            }
            RtcEvent::Audio { packet, .. } => self.deliver_audio(packet),
            RtcEvent::ChannelOpen { side, channel } => {
                if side == Side::Publisher && channel == DataChannel::Reliable {
                    self.reliable_open.send_replace(true);
                }
            }
            RtcEvent::ChannelClosed { side, channel } => {
                if side == Side::Publisher && channel == DataChannel::Reliable {
                    self.reliable_open.send_replace(false);
                }
            }
            RtcEvent::Data { payload, .. } => self.deliver_data(&payload),
            RtcEvent::Failed { side, reason } => {
                return Err(format!("the {} connection failed: {reason}", side.as_str()));
            }
            RtcEvent::Connected(side) => {
                tracing::debug!(side = side.as_str(), "media connected");
            }
            RtcEvent::Disconnected(side) => {
                tracing::info!(side = side.as_str(), "media path interrupted");
                // The publisher is ours to offer: new ICE credentials are
                // the way back (the server restarts the subscriber).
                if side == Side::Publisher && self.pending_cid.is_none() {
                    match self
                        .handle
                        .create_offer(Side::Publisher, OfferChanges::ice_restart())
                        .await
                    {
                        Ok(Some(offer)) => {
                            return Ok(Some(SignalRequest::Offer(proto::SessionDescription {
                                r#type: "offer".into(),
                                sdp: offer.sdp,
                                ..Default::default()
                            })));
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(%error, "could not restart ICE on the publisher")
                        }
                    }
                }
            }
            RtcEvent::Refused { side, error } => {
                tracing::debug!(side = side.map(Side::as_str), %error, "media input refused");
            }
            RtcEvent::TrackAdded { .. } | RtcEvent::TrackRemoved { .. } => {}
        }
        Ok(None)
    }

    fn deliver_audio(&mut self, packet: AudioPacket) {
        let (stream_id, track_sid) = self.remote.get(&packet.mid).cloned().unwrap_or_default();
        let participant = self
            .track_owners
            .get(&track_sid)
            .cloned()
            .or_else(|| {
                // LiveKit names the stream `PA_sid|TR_sid`.
                let sid = stream_id.split('|').next().unwrap_or_default();
                self.identities.get(sid).cloned()
            })
            .unwrap_or_default();
        let stream = mid_number(packet.mid);
        let audio = RemoteAudio {
            participant,
            track_sid,
            stream,
            packet,
        };
        if self.audio.try_send(audio).is_err() {
            self.drops
                .audio_in
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn deliver_data(&mut self, payload: &[u8]) {
        let now = std::time::Instant::now();
        for error in self.reader.expire(now) {
            tracing::debug!(%error, "text stream abandoned");
        }
        let text = match decode_packet(payload) {
            // `publishData` on the chat topic: the payload is the text.
            Ok(Received::User {
                sender,
                topic: Some(topic),
                payload,
                ..
            }) if topic == TOPIC_CHAT => match String::from_utf8(payload) {
                Ok(text) => Some(TextMessage {
                    sender,
                    stream_id: String::new(),
                    topic,
                    attributes: HashMap::new(),
                    text,
                    timestamp_ms: super::unix_millis(),
                }),
                Err(_) => {
                    tracing::debug!("chat packet that is not UTF-8 ignored");
                    None
                }
            },
            Ok(received) => match self.reader.receive(received, now) {
                Ok(text) => text,
                Err(error) => {
                    tracing::debug!(%error, "text stream packet refused");
                    None
                }
            },
            Err(error) => {
                tracing::debug!(%error, "data packet refused");
                None
            }
        };
        if let Some(text) = text
            && self.texts.try_send(text).is_err()
        {
            tracing::warn!("incoming text dropped: the agent is not reading them");
        }
    }

    /// Closes both connections.
    pub async fn close(self) {
        self.handle.close().await;
        self.task.abort();
    }
}

/// A small stable number for a mid (its digits when numeric).
fn mid_number(mid: Mid) -> u32 {
    let text = mid.to_string();
    text.parse().unwrap_or_else(|_| {
        text.bytes().fold(2_166_136_261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16_777_619)
        })
    })
}
