//! One call's voice attached to its room: the caller's Opus packets and
//! `lk.chat` texts go into the voice pipeline; its paced packets go out on
//! the agent's track, its captions as live `lk.transcription` streams (cut
//! where the caller interrupted) and its state as `lk.agent.state`.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::room::data::{
    LiveTextStream, TOPIC_CHAT, TOPIC_TRANSCRIPTION, TextStreamOptions, new_stream_id,
    transcription_attributes,
};
use crate::room::{AGENT_STATE_ATTRIBUTE, MediaInbound, RoomConnection, unix_millis};
use crate::session::io::{self, SessionIo};
use crate::voice::call::{self, CallLinks, ToRoom, VoiceError, VoiceReport};
use crate::voice::listener::InboundPacket;
use crate::voice::speaking::CaptionUpdate;

use super::voice::VoiceStack;

/// Caller packets waiting for the pipeline (it reads every 20 ms).
const CALLER_AUDIO: usize = 64;
const CALLER_TEXT: usize = 16;
/// What the pipeline hands the room: a second of packets plus captions.
const TO_ROOM: usize = 128;

/// A call's voice, running.
pub struct VoiceCall {
    /// The session's side of the call's line.
    pub session: SessionIo,
    pub task: JoinHandle<Result<VoiceReport, VoiceError>>,
    bridges: Vec<JoinHandle<()>>,
    /// An observer waits for the pipeline's report: it is not aborted.
    observed: bool,
}

impl VoiceCall {
    /// Stops the bridges (the pipeline ends with the session).
    pub fn stop(&self) {
        for bridge in &self.bridges {
            bridge.abort();
        }
    }
}

impl Drop for VoiceCall {
    fn drop(&mut self) {
        self.stop();
        if !self.observed {
            self.task.abort();
        }
    }
}

/// Starts the voice pipeline between `room`'s media and a session.
pub fn attach(
    room: &RoomConnection,
    inbound: MediaInbound,
    stack: &Arc<VoiceStack>,
    seed: u64,
) -> VoiceCall {
    let (session, transport) = io::channel(64);
    let mut bridges = Vec::with_capacity(2);
    let (audio_tx, caller_audio) = mpsc::channel(CALLER_AUDIO);
    let (text_tx, caller_text) = mpsc::channel(CALLER_TEXT);
    let (room_tx, mut to_room) = mpsc::channel(TO_ROOM);
    let links = CallLinks {
        caller_audio,
        caller_text,
        room: room_tx,
        session: transport,
    };
    let pipeline = call::run(stack.settings, stack.voices.clone(), links, seed);
    let task = match &stack.observer {
        Some(observer) => {
            let (observer, room_name) = (observer.clone(), room.room_name().to_owned());
            tokio::spawn(async move {
                let result = pipeline.await;
                observer.finished(&room_name, result.as_ref().ok().cloned());
                result
            })
        }
        None => tokio::spawn(pipeline),
    };
    let listen = tokio::spawn(listen(inbound, audio_tx, text_tx));
    let speak_room = room.clone();
    let observer = stack.observer.clone();
    let speak = tokio::spawn(async move {
        let mut captions = Captions::default();
        while let Some(out) = to_room.recv().await {
            match out {
                ToRoom::Audio(packet) => {
                    speak_room.send_audio(&packet, crate::voice::outbox::FRAME);
                }
                ToRoom::Caption(update) => captions.publish(&speak_room, update).await,
                ToRoom::State(state) => {
                    speak_room
                        .set_attribute(AGENT_STATE_ATTRIBUTE, state.as_str())
                        .await;
                }
                ToRoom::Event(event) => {
                    if let Some(observer) = &observer {
                        observer.event(speak_room.room_name(), &event);
                    }
                }
            }
        }
    });
    bridges.push(listen);
    bridges.push(speak);
    VoiceCall {
        session,
        task,
        bridges,
        observed: stack.observer.is_some(),
    }
}

/// The caller's packets and chat texts, into the pipeline.
async fn listen(
    mut inbound: MediaInbound,
    audio: mpsc::Sender<InboundPacket>,
    text: mpsc::Sender<String>,
) {
    let mut texts_open = true;
    loop {
        tokio::select! {
            packet = inbound.audio.recv() => {
                let Some(remote) = packet else { break };
                let packet = InboundPacket {
                    ssrc: remote.stream,
                    sequence: remote.packet.sequence as u16,
                    timestamp: remote.packet.rtp_timestamp,
                    payload: Bytes::from_owner(remote.packet.payload),
                };
                // A pipeline that fell a second behind loses packets rather
                // than the call's memory.
                let _ = audio.try_send(packet);
            }
            message = inbound.texts.recv(), if texts_open => match message {
                Some(message) if message.topic == TOPIC_CHAT => {
                    if text.send(message.text).await.is_err() {
                        break;
                    }
                }
                Some(_) => {}
                None => texts_open = false,
            },
        }
    }
}

/// The agent's captions as live text streams, one per segment.
#[derive(Default)]
struct Captions {
    open: HashMap<u64, (LiveTextStream, String)>,
}

impl Captions {
    async fn publish(&mut self, room: &RoomConnection, update: CaptionUpdate) {
        let identity = room.local_identity().to_owned();
        let track = room.audio_track_sid().unwrap_or_default();
        let packets = match update {
            CaptionUpdate::Open { segment } => {
                let segment_id =
                    format!("SG_{}", new_stream_id().replace('-', "")[..12].to_owned());
                let options = TextStreamOptions {
                    attributes: transcription_attributes(&segment_id, &track, false),
                    ..TextStreamOptions::new(TOPIC_TRANSCRIPTION)
                };
                let (stream, header) =
                    LiveTextStream::open(&identity, &options, new_stream_id(), unix_millis());
                self.open.insert(segment, (stream, segment_id));
                vec![header]
            }
            CaptionUpdate::Text { segment, delta } => match self.open.get_mut(&segment) {
                Some((stream, _)) => stream.append(&delta),
                None => Vec::new(),
            },
            CaptionUpdate::Close { segment, .. } => match self.open.remove(&segment) {
                Some((stream, segment_id)) => {
                    vec![stream.close(transcription_attributes(&segment_id, &track, true))]
                }
                None => Vec::new(),
            },
        };
        if !packets.is_empty() && !room.send_data(&packets).await {
            tracing::debug!(room = room.room_name(), "caption not sent");
        }
    }
}
