//! Scripted callers: participants of the stand-in that join a room with
//! WebRTC, speak prepared Opus packets on a schedule, type on `lk.chat`,
//! and record what they receive: every agent packet's arrival and loudness
//! (decoded at 16 kHz, 20 ms at a time) and every caption, with timestamps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{DispatchError, LoopbackHandle};
use crate::media::opus::Decoder;
use crate::room::data::{
    TOPIC_CHAT, TOPIC_TRANSCRIPTION, TextStreamOptions, new_stream_id, text_stream,
};
use crate::room::rtc::Loopback;
use crate::room::{MediaOptions, RoomConnection, RoomError, RoomOptions, unix_millis};

const FRAME: Duration = Duration::from_millis(20);
/// Louder than this (dBFS over a packet) is the agent speaking.
pub const AUDIBLE_DBFS: f32 = -45.0;

/// One agent packet as the caller heard it.
#[derive(Debug, Clone, Copy)]
pub struct HeardPacket {
    pub at: Instant,
    pub level_dbfs: f32,
}

/// Everything a caller received so far.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub packets: Vec<HeardPacket>,
    /// (arrival, text) of completed `lk.transcription` captions.
    pub captions: Vec<(Instant, String)>,
    pub undecodable: u32,
}

impl Recording {
    /// The first audible packet at or after `since`.
    pub fn first_audible_after(&self, since: Instant) -> Option<Instant> {
        self.packets
            .iter()
            .find(|p| p.at >= since && p.level_dbfs > AUDIBLE_DBFS)
            .map(|p| p.at)
    }

    /// The last audible packet.
    pub fn last_audible(&self) -> Option<Instant> {
        self.packets
            .iter()
            .rev()
            .find(|p| p.level_dbfs > AUDIBLE_DBFS)
            .map(|p| p.at)
    }
}

/// Why a scripted caller could not join.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    #[error(transparent)]
    Token(#[from] DispatchError),
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error("the caller's room has no media")]
    NoMedia,
}

/// A caller in a room of the stand-in.
pub struct ScriptedCaller {
    room: RoomConnection,
    identity: String,
    recording: Arc<Mutex<Recording>>,
    recorder: JoinHandle<()>,
}

impl Drop for ScriptedCaller {
    fn drop(&mut self) {
        self.recorder.abort();
    }
}

impl ScriptedCaller {
    /// Joins `room` as `identity` with media (loopback candidates: the
    /// stand-in is on this machine) and starts recording.
    pub async fn join(
        server: &LoopbackHandle,
        room: &str,
        identity: &str,
    ) -> Result<ScriptedCaller, CallerError> {
        let token = server.participant_token(room, identity, false)?;
        let options = RoomOptions::with_media(MediaOptions {
            loopback: Loopback::Include,
            track_name: "microphone".into(),
        });
        let connection = RoomConnection::connect_with(&server.url(), &token, &options).await?;
        let mut inbound = connection.take_inbound().ok_or(CallerError::NoMedia)?;
        let recording = Arc::new(Mutex::new(Recording::default()));
        let shared = recording.clone();
        let recorder = tokio::spawn(async move {
            // 16 kHz is enough to tell speech from silence, at less cost.
            let mut decoder = Decoder::at_rate(16_000).ok();
            let mut pcm = vec![0i16; 5760];
            loop {
                tokio::select! {
                    audio = inbound.audio.recv() => {
                        let Some(audio) = audio else { break };
                        let at = Instant::now();
                        let level = decoder
                            .as_mut()
                            .and_then(|d| d.decode(&audio.packet.payload, &mut pcm).ok())
                            .map(|n| crate::media::level_dbfs(&pcm[..n]));
                        let mut recording = shared.lock().unwrap_or_else(|e| e.into_inner());
                        match level {
                            Some(level_dbfs) => recording.packets.push(HeardPacket { at, level_dbfs }),
                            None => recording.undecodable += 1,
                        }
                    }
                    text = inbound.texts.recv() => {
                        let Some(text) = text else { break };
                        if text.topic == TOPIC_TRANSCRIPTION {
                            shared
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .captions
                                .push((Instant::now(), text.text));
                        }
                    }
                }
            }
        });
        Ok(ScriptedCaller {
            room: connection,
            identity: identity.to_owned(),
            recording,
            recorder,
        })
    }

    pub fn room(&self) -> &RoomConnection {
        &self.room
    }

    /// Waits until the caller's microphone track is accepted.
    pub async fn microphone_ready(&self, limit: Duration) -> bool {
        self.room.audio_published(limit).await
    }

    /// Speaks `packets` (20 ms Opus each) in real time; returns when the
    /// last one went out.
    pub async fn say(&self, packets: &[Bytes]) -> Instant {
        let mut tick = tokio::time::interval(FRAME);
        for packet in packets {
            tick.tick().await;
            self.room.send_audio(packet, FRAME);
        }
        Instant::now()
    }

    /// Types `text` on `lk.chat`; returns when it went out.
    pub async fn type_text(&self, text: &str) -> Instant {
        let options = TextStreamOptions::new(TOPIC_CHAT);
        let packets: Vec<_> = text_stream(
            &self.identity,
            text,
            &options,
            new_stream_id(),
            unix_millis(),
        )
        .collect();
        self.room.send_data(&packets).await;
        Instant::now()
    }

    /// Whether an audible agent packet arrived at or after `since`.
    pub fn heard_since(&self, since: Instant) -> bool {
        self.recording
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .packets
            .iter()
            .rev()
            .take_while(|p| p.at >= since)
            .any(|p| p.level_dbfs > AUDIBLE_DBFS)
    }

    /// How many captions the caller has read so far, and when the last came.
    pub fn captions_read(&self) -> (usize, Option<Instant>) {
        let recording = self.recording.lock().unwrap_or_else(|e| e.into_inner());
        (
            recording.captions.len(),
            recording.captions.last().map(|(at, _)| *at),
        )
    }

    /// What the caller has received so far.
    pub fn recording(&self) -> Recording {
        self.recording
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the agent has spoken (an audible packet after `since`)
    /// and then been quiet for `quiet`, up to `limit`; returns the recording.
    pub async fn until_quiet(&self, since: Instant, quiet: Duration, limit: Duration) -> Recording {
        let deadline = Instant::now() + limit;
        loop {
            let recording = self.recording();
            let spoke = recording.first_audible_after(since).is_some();
            let silent_for = recording
                .last_audible()
                .map(|last| last.elapsed())
                .unwrap_or_default();
            if (spoke && silent_for >= quiet) || Instant::now() >= deadline {
                return recording;
            }
            tokio::time::sleep(FRAME).await;
        }
    }

    pub async fn leave(&self) {
        self.room.leave().await;
    }
}
