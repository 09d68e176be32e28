//! The stand-in's media: a small audio SFU with LiveKit's negotiation. Each
//! participant gets a server-role transport (ICE-lite, one UDP socket for
//! both of its connections). The server offers the subscriber connection at
//! join (data channels and every audio track already published) and again
//! whenever another participant publishes; it answers the participant's
//! publisher offer after an `AddTrackRequest`; it forwards each published
//! track's Opus packets to every other participant and each data packet to
//! its destinations, stamped with the sender's identity as LiveKit does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as SignalRequest;
use proto::signal_response::Message as SignalResponse;
use rand::Rng;
use tokio::sync::mpsc;

use super::{Hub, RtcCommand};
use crate::room::data::encode_packet;
use crate::room::data::packet::decode_envelope;
use crate::room::rtc::driver::{self, TransportHandle};
use crate::room::rtc::{
    CandidateInit, DataChannel, LocalTrack, Mid, OfferChanges, Role, RtcEvent, Side,
    TransportConfig,
};

const FRAME: Duration = Duration::from_millis(20);

/// One published audio track in a room.
#[derive(Debug, Clone)]
pub(super) struct PublishedTrack {
    pub owner: String,
    pub owner_sid: String,
    /// The mid it arrives on, on the owner's publisher connection.
    pub mid: Mid,
}

/// A participant's media, as the room's other participants reach it.
#[derive(Debug, Clone)]
pub(super) struct MediaPeer {
    pub handle: TransportHandle,
    /// Track sid → the server's sending track on this participant's
    /// subscriber connection.
    pub subscribed: HashMap<String, LocalTrack>,
    /// Whether the subscriber connection's reliable channel is open; data
    /// for the participant waits in `pending` until it is.
    pub data_open: bool,
    pub pending: Vec<(DataChannel, Vec<u8>)>,
}

/// Data held for a participant whose channel is not open yet, at most.
const PENDING_DATA: usize = 256;

/// One participant's media, driven by its signal task.
pub(super) struct SfuPeer {
    hub: Arc<Hub>,
    room: String,
    identity: String,
    sid: String,
    handle: TransportHandle,
    pub events: mpsc::Receiver<RtcEvent>,
    task: tokio::task::JoinHandle<()>,
    /// cid → the track the server published for it, until its media arrives.
    pending: HashMap<String, proto::TrackInfo>,
    offer_in_flight: bool,
    renegotiate: bool,
    channels_offered: bool,
    /// Per receiving participant, when the last jittered packet goes out:
    /// jitter delays packets but never reorders them (a receiver's jitter
    /// buffer would put them back in order by sequence number).
    released: HashMap<String, tokio::time::Instant>,
}

impl SfuPeer {
    /// Starts the participant's transport on the stand-in's media addresses.
    pub async fn start(hub: Arc<Hub>, room: &str, identity: &str, sid: &str) -> Option<SfuPeer> {
        let running = match driver::spawn(
            TransportConfig::new(Role::Server),
            &hub.config.media_ips,
            Default::default(),
        )
        .await
        {
            Ok(running) => running,
            Err(error) => {
                tracing::warn!(%error, "stand-in: no media for this participant");
                return None;
            }
        };
        {
            let mut state = hub.lock();
            if let Some(room_state) = state.rooms.get_mut(room) {
                room_state.media.insert(
                    identity.to_owned(),
                    MediaPeer {
                        handle: running.handle.clone(),
                        subscribed: HashMap::new(),
                        data_open: false,
                        pending: Vec::new(),
                    },
                );
            }
        }
        Some(SfuPeer {
            hub,
            room: room.to_owned(),
            identity: identity.to_owned(),
            sid: sid.to_owned(),
            handle: running.handle,
            events: running.events,
            task: running.task,
            pending: HashMap::new(),
            released: HashMap::new(),
            offer_in_flight: false,
            renegotiate: false,
            channels_offered: false,
        })
    }

    /// Offers the subscriber connection: data channels the first time, and
    /// every track published by others not yet offered. `None` when there
    /// is nothing new or an offer is already waiting for its answer.
    pub async fn offer(&mut self) -> Option<SignalResponse> {
        if self.offer_in_flight {
            self.renegotiate = true;
            return None;
        }
        let new_tracks: Vec<(String, PublishedTrack)> = {
            let state = self.hub.lock();
            let room = state.rooms.get(&self.room)?;
            let peer = room.media.get(&self.identity)?;
            room.tracks
                .iter()
                .filter(|(sid, t)| t.owner != self.identity && !peer.subscribed.contains_key(*sid))
                .map(|(sid, t)| (sid.clone(), t.clone()))
                .collect()
        };
        if new_tracks.is_empty() && self.channels_offered {
            return None;
        }
        let changes = OfferChanges {
            add_audio: new_tracks
                .iter()
                .map(|(sid, t)| (format!("{}|{sid}", t.owner_sid), sid.clone()))
                .collect(),
            data_channels: !self.channels_offered,
            ..OfferChanges::default()
        };
        let offer = match self.handle.create_offer(Side::Subscriber, changes).await {
            Ok(Some(offer)) => offer,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, "stand-in: subscriber offer failed");
                return None;
            }
        };
        self.channels_offered = true;
        self.offer_in_flight = true;
        {
            let mut state = self.hub.lock();
            if let Some(peer) = state
                .rooms
                .get_mut(&self.room)
                .and_then(|r| r.media.get_mut(&self.identity))
            {
                for ((sid, _), track) in new_tracks.iter().zip(&offer.tracks) {
                    peer.subscribed.insert(sid.clone(), *track);
                }
            }
        }
        Some(SignalResponse::Offer(proto::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.sdp,
            ..Default::default()
        }))
    }

    /// Acts on a media request from the participant; returns what to send it.
    pub async fn on_request(&mut self, request: &SignalRequest) -> Vec<SignalResponse> {
        match request {
            SignalRequest::Answer(answer) => {
                if let Err(error) = self
                    .handle
                    .accept_answer(Side::Subscriber, answer.sdp.clone())
                    .await
                {
                    tracing::warn!(%error, "stand-in: subscriber answer refused");
                }
                self.offer_in_flight = false;
                if std::mem::take(&mut self.renegotiate) {
                    return self.offer().await.into_iter().collect();
                }
                Vec::new()
            }
            SignalRequest::Offer(offer) => {
                match self
                    .handle
                    .accept_offer(Side::Publisher, offer.sdp.clone())
                    .await
                {
                    Ok(answer) => vec![SignalResponse::Answer(proto::SessionDescription {
                        r#type: "answer".into(),
                        sdp: answer.sdp,
                        id: offer.id,
                        ..Default::default()
                    })],
                    Err(error) => {
                        tracing::warn!(%error, "stand-in: publisher offer refused");
                        Vec::new()
                    }
                }
            }
            SignalRequest::Trickle(trickle) => {
                let side = Side::of_signal_target(trickle.target);
                match CandidateInit::from_json(&trickle.candidate_init) {
                    Ok(candidate) => {
                        if let Err(error) = self.handle.add_remote_candidate(side, candidate).await
                        {
                            tracing::debug!(%error, "stand-in: candidate refused");
                        }
                    }
                    Err(error) => tracing::debug!(%error, "stand-in: candidate refused"),
                }
                Vec::new()
            }
            SignalRequest::AddTrack(add) => {
                if add.r#type != proto::TrackType::Audio as i32 {
                    return Vec::new();
                }
                let track = proto::TrackInfo {
                    sid: format!("TR_{}", self.hub.next_id()),
                    r#type: proto::TrackType::Audio as i32,
                    name: add.name.clone(),
                    source: add.source,
                    mime_type: "audio/opus".into(),
                    mid: String::new(),
                    ..Default::default()
                };
                self.pending.insert(add.cid.clone(), track.clone());
                vec![SignalResponse::TrackPublished(
                    proto::TrackPublishedResponse {
                        cid: add.cid.clone(),
                        track: Some(track),
                    },
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Acts on a transport event; returns what to send the participant.
    pub fn on_event(&mut self, event: RtcEvent) -> Option<SignalResponse> {
        match event {
            RtcEvent::LocalCandidate { side, candidate } => {
                Some(SignalResponse::Trickle(side.trickle(&candidate)))
            }
            RtcEvent::TrackAdded {
                side: Side::Publisher,
                track,
            } => {
                self.published(track.mid, &track.track_id);
                None
            }
            RtcEvent::Audio {
                side: Side::Publisher,
                packet,
            } => {
                self.forward_audio(packet.mid, packet.payload);
                None
            }
            RtcEvent::Data {
                side: Side::Publisher,
                channel,
                payload,
            } => {
                self.forward_data(channel, &payload);
                None
            }
            RtcEvent::ChannelOpen {
                side: Side::Subscriber,
                channel: DataChannel::Reliable,
            } => {
                self.flush_pending();
                None
            }
            RtcEvent::Failed { side, reason } => {
                tracing::info!(identity = %self.identity, side = side.as_str(), %reason, "stand-in: media failed");
                None
            }
            _ => None,
        }
    }

    /// A track's media arrived: publish it to the room.
    fn published(&mut self, mid: Mid, cid: &str) {
        let Some(mut info) = self.pending.remove(cid) else {
            tracing::debug!(cid, "stand-in: media for a track never added");
            return;
        };
        info.mid = mid.to_string();
        let mut state = self.hub.lock();
        let Some(room) = state.rooms.get_mut(&self.room) else {
            return;
        };
        room.tracks.insert(
            info.sid.clone(),
            PublishedTrack {
                owner: self.identity.clone(),
                owner_sid: self.sid.clone(),
                mid,
            },
        );
        let Some(participant) = room.participants.get_mut(&self.identity) else {
            return;
        };
        participant.tracks.push(info);
        let update = proto::ParticipantUpdate {
            participants: vec![participant.clone()],
        };
        for (identity, link) in &room.signal_links {
            let _ = link.send(RtcCommand::Send(Box::new(SignalResponse::Update(
                update.clone(),
            ))));
            if *identity != self.identity {
                let _ = link.send(RtcCommand::Renegotiate);
            }
        }
    }

    fn forward_audio(&mut self, mid: Mid, payload: Arc<[u8]>) {
        let targets: Vec<(String, TransportHandle, LocalTrack)> = {
            let state = self.hub.lock();
            let Some(room) = state.rooms.get(&self.room) else {
                return;
            };
            let Some(sid) = room
                .tracks
                .iter()
                .find(|(_, t)| t.owner == self.identity && t.mid == mid)
                .map(|(sid, _)| sid)
            else {
                return;
            };
            room.media
                .iter()
                .filter(|(who, _)| **who != self.identity)
                .filter_map(|(who, peer)| {
                    peer.subscribed
                        .get(sid)
                        .map(|track| (who.clone(), peer.handle.clone(), *track))
                })
                .collect()
        };
        let loss = self.hub.config.media_loss;
        let jitter = self.hub.config.media_jitter;
        for (who, handle, track) in targets {
            if loss > 0.0 && rand::rng().random_bool(loss.min(1.0)) {
                continue;
            }
            let payload = payload.clone();
            if jitter.is_zero() {
                // A full queue drops the packet, as a congested link would.
                let _ = handle.try_send_audio(track, payload, FRAME);
            } else {
                let wanted =
                    tokio::time::Instant::now() + jitter.mul_f64(rand::rng().random::<f64>());
                let release = match self.released.get(&who) {
                    Some(last) => wanted.max(*last + Duration::from_millis(1)),
                    None => wanted,
                };
                self.released.insert(who, release);
                tokio::spawn(async move {
                    tokio::time::sleep_until(release).await;
                    let _ = handle.try_send_audio(track, payload, FRAME);
                });
            }
        }
    }

    fn forward_data(&self, channel: DataChannel, payload: &[u8]) {
        let mut packet = match decode_envelope(payload) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::debug!(%error, "stand-in: data packet refused");
                return;
            }
        };
        packet.participant_identity = self.identity.clone();
        packet.participant_sid = self.sid.clone();
        let destinations = std::mem::take(&mut packet.destination_identities);
        let mut bytes = Vec::new();
        if encode_packet(&packet, &mut bytes).is_err() {
            return;
        }
        let targets: Vec<TransportHandle> = {
            let mut state = self.hub.lock();
            let Some(room) = state.rooms.get_mut(&self.room) else {
                return;
            };
            let mut open = Vec::new();
            for (who, peer) in room.media.iter_mut() {
                if *who == self.identity || !(destinations.is_empty() || destinations.contains(who))
                {
                    continue;
                }
                if peer.data_open {
                    open.push(peer.handle.clone());
                } else if peer.pending.len() < PENDING_DATA {
                    peer.pending.push((channel, bytes.clone()));
                }
            }
            open
        };
        // Queued without waiting, so each receiver gets them in order.
        for handle in targets {
            if handle
                .try_send_data(Side::Subscriber, channel, bytes.clone())
                .is_err()
            {
                tracing::debug!("stand-in: data packet dropped, the receiver is behind");
            }
        }
    }

    /// This participant's channel opened: what waited for it goes, in order.
    fn flush_pending(&self) {
        let (handle, pending) = {
            let mut state = self.hub.lock();
            let Some(peer) = state
                .rooms
                .get_mut(&self.room)
                .and_then(|r| r.media.get_mut(&self.identity))
            else {
                return;
            };
            peer.data_open = true;
            (peer.handle.clone(), std::mem::take(&mut peer.pending))
        };
        for (channel, bytes) in pending {
            let _ = handle.try_send_data(Side::Subscriber, channel, bytes);
        }
    }

    /// The participant left: its tracks and transport go.
    pub async fn close(self) {
        {
            let mut state = self.hub.lock();
            if let Some(room) = state.rooms.get_mut(&self.room) {
                room.media.remove(&self.identity);
                room.tracks.retain(|_, t| t.owner != self.identity);
            }
        }
        self.handle.close().await;
        self.task.abort();
    }
}
