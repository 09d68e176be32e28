//! The caller's audio, one 20 ms tick at a time: RTP payloads into a jitter
//! buffer, decoded straight to the recognizer's 16 kHz (losses concealed or
//! recovered from FEC), and through voice activity detection. Each tick
//! yields the 16 kHz frame for the recognizer and the speech start or end
//! it completed, dated in the call's clock.
//!
//! Nothing is allocated per tick: every buffer is owned and reused.

use std::time::Duration;

use tokio::time::Instant;

use crate::media::jitter::{JitterBuffer, JitterConfig, JitterStats, Pushed, RtpPacket};
use crate::media::opus::{Decoder, OpusError};
use crate::media::vad::{Vad, VadConfig, VadError, VadEvent};

/// The rate the recognizer and the VAD take.
pub const LISTEN_RATE: u32 = 16_000;
/// Samples of one 20 ms frame at [`LISTEN_RATE`].
const FRAME_16K: usize = 320;

/// One packet of the caller's audio track, as the room received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundPacket {
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub payload: bytes::Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error(transparent)]
    Opus(#[from] OpusError),
    #[error(transparent)]
    Vad(#[from] VadError),
}

/// A start or end of the caller's speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Started(Instant),
    Stopped(Instant),
}

/// What one tick heard.
#[derive(Debug)]
pub struct Heard<'a> {
    /// The tick's audio at 16 kHz (silence while the caller sends nothing).
    pub frame: &'a [i16],
    /// Whether the caller is sending audio at all (not idle or muted).
    pub live: bool,
    pub activity: Option<Activity>,
    /// A packet that could not be decoded (concealed in its place).
    pub decode_error: Option<OpusError>,
}

/// One caller's listening path.
pub struct Listener {
    jitter: JitterBuffer,
    decoder: Decoder,
    vad: Vad,
    frame16: Vec<i16>,
    /// The call's clock at the VAD's sample 0, for dating its events.
    started: Option<Instant>,
}

impl Listener {
    pub fn new(jitter: JitterConfig, vad: VadConfig) -> Result<Listener, ListenerError> {
        Ok(Listener {
            jitter: JitterBuffer::new(jitter),
            decoder: Decoder::at_rate(LISTEN_RATE)?,
            vad: Vad::new(vad),
            frame16: vec![0; FRAME_16K],
            started: None,
        })
    }

    /// A packet arrived at `now`.
    pub fn push(&mut self, packet: &InboundPacket, now: Instant) -> Pushed {
        self.jitter.push(
            RtpPacket {
                ssrc: packet.ssrc,
                sequence: packet.sequence,
                timestamp: packet.timestamp,
                payload: &packet.payload,
            },
            now.into_std(),
        )
    }

    /// Frames the jitter buffer holds ahead of its playhead.
    pub fn buffered_frames(&self) -> u64 {
        self.jitter.depth()
    }

    pub fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// Whether the VAD currently hears speech.
    pub fn caller_speaking(&self) -> bool {
        self.vad.is_speaking()
    }

    /// The 20 ms tick at `now`.
    pub fn tick(&mut self, now: Instant) -> Result<Heard<'_>, ListenerError> {
        let started = *self.started.get_or_insert(now);
        let tick = self.jitter.pop(now.into_std());
        let live = !matches!(tick.decode, crate::media::jitter::Decode::Idle);
        let decode_error = self.decoder.decode_tick(&tick, &mut self.frame16).err();
        let decision = self.vad.push(&self.frame16)?;
        let activity = decision.event.map(|event| {
            let at = started + event.time();
            match event {
                VadEvent::SpeechStart { .. } => Activity::Started(at),
                VadEvent::SpeechEnd { .. } => Activity::Stopped(at),
            }
        });
        Ok(Heard {
            frame: &self.frame16,
            live,
            activity,
            decode_error,
        })
    }
}

/// How long one tick lasts.
pub const TICK: Duration = Duration::from_millis(20);
