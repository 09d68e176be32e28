//! LiveKit data packets and text streams: what travels on a room's `_reliable`
//! and `_lossy` data channels. [`packet`] encodes and decodes
//! `livekit_protocol::DataPacket` with limits; [`writer`] turns a text into a
//! stream's header, chunks and trailer; [`reader`] reassembles incoming
//! streams per sender into whole texts, with bounded memory.
//!
//! ```
//! use std::time::Instant;
//! use voxguard::room::data::{StreamReader, ReaderLimits, TextStreamOptions, text_stream, TOPIC_CHAT};
//!
//! let options = TextStreamOptions::new(TOPIC_CHAT);
//! let mut reader = StreamReader::new(ReaderLimits::default());
//! let now = Instant::now();
//! let mut texts = Vec::new();
//! for packet in text_stream("caller", "hello agent", &options, "stream-1".into(), 0) {
//!     if let Some(text) = reader.receive_packet(packet, now).unwrap() {
//!         texts.push(text);
//!     }
//! }
//! assert_eq!(texts[0].text, "hello agent");
//! assert_eq!(texts[0].topic, TOPIC_CHAT);
//! ```

pub mod packet;
pub mod reader;
pub mod writer;

pub use packet::{DataError, MAX_DATA_PACKET, Received, decode_packet, encode_packet, user_packet};
pub use reader::{ReaderLimits, StreamError, StreamReader, TextMessage};
pub use writer::{
    CHUNK_SIZE, LiveTextStream, TextStreamOptions, TextStreamPackets, new_stream_id, text_stream,
    transcription_attributes,
};

/// The topic LiveKit Agents publish transcriptions on (the agent's speech and
/// the caller's recognised words).
pub const TOPIC_TRANSCRIPTION: &str = "lk.transcription";
/// The topic a caller types chat text on.
pub const TOPIC_CHAT: &str = "lk.chat";
/// Transcription attribute: the segment a piece of text belongs to.
pub const ATTRIBUTE_SEGMENT_ID: &str = "lk.segment_id";
/// Transcription attribute: the track sid whose audio the text transcribes.
pub const ATTRIBUTE_TRANSCRIBED_TRACK_ID: &str = "lk.transcribed_track_id";
/// Transcription attribute: `"true"` when the segment is final.
pub const ATTRIBUTE_TRANSCRIPTION_FINAL: &str = "lk.transcription_final";
