//! Outgoing text streams: one text becomes a header (topic, attributes,
//! total length, stream id), chunks of at most [`CHUNK_SIZE`] bytes cut on
//! UTF-8 character boundaries, and a trailer, each a reliable
//! `DataPacket`. Packets are produced lazily, so a long text never exists
//! twice over as packets.

use std::collections::HashMap;

use livekit_protocol as proto;
use proto::data_packet::Value;
use proto::data_stream::{Chunk, Header, TextHeader, Trailer, header::ContentHeader};

use super::{ATTRIBUTE_SEGMENT_ID, ATTRIBUTE_TRANSCRIBED_TRACK_ID, ATTRIBUTE_TRANSCRIPTION_FINAL};

/// Most bytes of text in one chunk (what LiveKit's SDKs send), leaving room
/// for the envelope inside one SCTP message.
pub const CHUNK_SIZE: usize = 15_000;
const TEXT_MIME_TYPE: &str = "text/plain";

/// Where a text stream goes and what it is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextStreamOptions {
    pub topic: String,
    pub attributes: HashMap<String, String>,
    /// Identities that receive the stream; everyone in the room when empty.
    pub destination_identities: Vec<String>,
}

impl TextStreamOptions {
    pub fn new(topic: &str) -> TextStreamOptions {
        TextStreamOptions {
            topic: topic.to_owned(),
            ..Default::default()
        }
    }

    pub fn attribute(mut self, key: &str, value: &str) -> TextStreamOptions {
        self.attributes.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// The attributes LiveKit Agents put on an `lk.transcription` stream.
pub fn transcription_attributes(
    segment_id: &str,
    transcribed_track_id: &str,
    is_final: bool,
) -> HashMap<String, String> {
    HashMap::from([
        (ATTRIBUTE_SEGMENT_ID.to_owned(), segment_id.to_owned()),
        (
            ATTRIBUTE_TRANSCRIBED_TRACK_ID.to_owned(),
            transcribed_track_id.to_owned(),
        ),
        (
            ATTRIBUTE_TRANSCRIPTION_FINAL.to_owned(),
            if is_final { "true" } else { "false" }.to_owned(),
        ),
    ])
}

/// A fresh stream id: 128 random bits as a UUID (version 4 layout).
pub fn new_stream_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The packets of one text stream from `sender`: header, chunks, trailer.
/// `timestamp_ms` is the stream's creation time in Unix milliseconds.
pub fn text_stream<'a>(
    sender: &'a str,
    text: &'a str,
    options: &'a TextStreamOptions,
    stream_id: String,
    timestamp_ms: i64,
) -> TextStreamPackets<'a> {
    TextStreamPackets {
        sender,
        rest: text,
        total_length: text.len() as u64,
        options,
        stream_id,
        timestamp_ms,
        chunk_index: 0,
        stage: Stage::Header,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Chunks,
    Trailer,
    Done,
}

/// Iterator over a text stream's packets (see [`text_stream`]).
#[derive(Debug, Clone)]
pub struct TextStreamPackets<'a> {
    sender: &'a str,
    rest: &'a str,
    total_length: u64,
    options: &'a TextStreamOptions,
    stream_id: String,
    timestamp_ms: i64,
    chunk_index: u64,
    stage: Stage,
}

impl TextStreamPackets<'_> {
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    fn packet(&self, value: Value) -> proto::DataPacket {
        data_packet(self.sender, &self.options.destination_identities, value)
    }
}

/// Splits `text` at most `max` bytes in, moving back to a character
/// boundary; always makes progress (a character is at most 4 bytes).
fn split_chunk(text: &str, max: usize) -> (&str, &str) {
    if text.len() <= max {
        return (text, "");
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.split_at(at)
}

impl Iterator for TextStreamPackets<'_> {
    type Item = proto::DataPacket;

    fn next(&mut self) -> Option<proto::DataPacket> {
        match self.stage {
            Stage::Header => {
                self.stage = if self.rest.is_empty() {
                    Stage::Trailer
                } else {
                    Stage::Chunks
                };
                let header = text_header(
                    &self.stream_id,
                    self.options,
                    Some(self.total_length),
                    self.timestamp_ms,
                );
                Some(self.packet(Value::StreamHeader(header)))
            }
            Stage::Chunks => {
                let (chunk, rest) = split_chunk(self.rest, CHUNK_SIZE);
                self.rest = rest;
                if rest.is_empty() {
                    self.stage = Stage::Trailer;
                }
                let chunk = Chunk {
                    stream_id: self.stream_id.clone(),
                    chunk_index: self.chunk_index,
                    content: chunk.as_bytes().to_vec(),
                    ..Default::default()
                };
                self.chunk_index += 1;
                Some(self.packet(Value::StreamChunk(chunk)))
            }
            Stage::Trailer => {
                self.stage = Stage::Done;
                let trailer = Trailer {
                    stream_id: self.stream_id.clone(),
                    ..Default::default()
                };
                Some(self.packet(Value::StreamTrailer(trailer)))
            }
            Stage::Done => None,
        }
    }
}

/// A text stream written while it happens, as LiveKit Agents write live
/// captions: the header when the text starts (no total length), a chunk
/// each time more text is known, and a trailer whose attributes update the
/// header's (e.g. `lk.transcription_final`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTextStream {
    sender: String,
    stream_id: String,
    destinations: Vec<String>,
    chunk_index: u64,
}

impl LiveTextStream {
    /// Opens a stream; returns it with its header packet.
    pub fn open(
        sender: &str,
        options: &TextStreamOptions,
        stream_id: String,
        timestamp_ms: i64,
    ) -> (LiveTextStream, proto::DataPacket) {
        let stream = LiveTextStream {
            sender: sender.to_owned(),
            stream_id,
            destinations: options.destination_identities.clone(),
            chunk_index: 0,
        };
        let header = stream.packet(Value::StreamHeader(text_header(
            &stream.stream_id,
            options,
            None,
            timestamp_ms,
        )));
        (stream, header)
    }

    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// The chunks carrying `text` (none for an empty text).
    pub fn append(&mut self, mut text: &str) -> Vec<proto::DataPacket> {
        let mut packets = Vec::new();
        while !text.is_empty() {
            let (chunk, rest) = split_chunk(text, CHUNK_SIZE);
            text = rest;
            packets.push(self.packet(Value::StreamChunk(Chunk {
                stream_id: self.stream_id.clone(),
                chunk_index: self.chunk_index,
                content: chunk.as_bytes().to_vec(),
                ..Default::default()
            })));
            self.chunk_index += 1;
        }
        packets
    }

    /// The trailer that ends the stream, with `attributes` updating the
    /// header's.
    pub fn close(self, attributes: HashMap<String, String>) -> proto::DataPacket {
        self.packet(Value::StreamTrailer(Trailer {
            stream_id: self.stream_id.clone(),
            attributes,
            ..Default::default()
        }))
    }

    fn packet(&self, value: Value) -> proto::DataPacket {
        data_packet(&self.sender, &self.destinations, value)
    }
}

/// A reliable data packet from `sender`.
fn data_packet(sender: &str, destinations: &[String], value: Value) -> proto::DataPacket {
    #[allow(deprecated)] // `kind` is still read by older servers and SDKs
    proto::DataPacket {
        kind: proto::data_packet::Kind::Reliable as i32,
        participant_identity: sender.to_owned(),
        destination_identities: destinations.to_vec(),
        value: Some(value),
        ..Default::default()
    }
}

/// A text stream's header.
fn text_header(
    stream_id: &str,
    options: &TextStreamOptions,
    total_length: Option<u64>,
    timestamp_ms: i64,
) -> Header {
    #[allow(deprecated)] // encryption_type: none, as every SDK sends
    Header {
        stream_id: stream_id.to_owned(),
        timestamp: timestamp_ms,
        topic: options.topic.clone(),
        mime_type: TEXT_MIME_TYPE.to_owned(),
        total_length,
        attributes: options.attributes.clone(),
        content_header: Some(ContentHeader::TextHeader(TextHeader::default())),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<proto::DataPacket> {
        let options = TextStreamOptions::new("lk.transcription");
        text_stream("agent", text, &options, "s1".into(), 5).collect()
    }

    #[test]
    fn a_short_text_is_header_one_chunk_and_trailer() {
        let packets = parts("hello");
        assert_eq!(packets.len(), 3);
        let Some(Value::StreamHeader(header)) = &packets[0].value else {
            panic!("first packet is not a header");
        };
        assert_eq!(header.topic, "lk.transcription");
        assert_eq!(header.total_length, Some(5));
        assert_eq!(header.mime_type, "text/plain");
        assert_eq!(header.timestamp, 5);
        assert!(matches!(
            header.content_header,
            Some(ContentHeader::TextHeader(_))
        ));
        let Some(Value::StreamChunk(chunk)) = &packets[1].value else {
            panic!("second packet is not a chunk");
        };
        assert_eq!(chunk.content, b"hello");
        assert!(matches!(packets[2].value, Some(Value::StreamTrailer(_))));
        assert!(packets.iter().all(|p| p.participant_identity == "agent"));
    }

    #[test]
    fn an_empty_text_has_no_chunks() {
        assert_eq!(parts("").len(), 2);
    }

    #[test]
    fn chunks_never_split_a_character() {
        // 'é' is two bytes: 15 000 bytes would cut the 7 500th in half
        // when preceded by one ASCII byte.
        let text = format!("a{}", "é".repeat(10_000));
        let packets = parts(&text);
        let chunks: Vec<&Chunk> = packets
            .iter()
            .filter_map(|p| match &p.value {
                Some(Value::StreamChunk(c)) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.content.len() <= CHUNK_SIZE));
        assert!(
            chunks
                .iter()
                .all(|c| std::str::from_utf8(&c.content).is_ok())
        );
        assert_eq!(chunks[0].chunk_index, 0);
        assert_eq!(chunks[1].chunk_index, 1);
    }

    #[test]
    fn transcription_attributes_use_the_agents_names() {
        let attributes = transcription_attributes("SG_1", "TR_2", true);
        assert_eq!(attributes["lk.segment_id"], "SG_1");
        assert_eq!(attributes["lk.transcribed_track_id"], "TR_2");
        assert_eq!(attributes["lk.transcription_final"], "true");
    }

    #[test]
    fn stream_ids_are_uuid_shaped_and_distinct() {
        let a = new_stream_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_stream_id());
    }

    #[test]
    fn a_live_stream_reads_back_as_one_text_with_the_trailers_attributes() {
        use crate::room::data::{ReaderLimits, StreamReader};
        let options = TextStreamOptions::new("lk.transcription").attribute("lk.segment_id", "SG_1");
        let (mut stream, header) = LiveTextStream::open("agent", &options, "s9".into(), 7);
        let mut packets = vec![header];
        packets.extend(stream.append("Hello "));
        packets.extend(stream.append(""));
        packets.extend(stream.append("there."));
        packets.push(stream.close(HashMap::from([(
            "lk.transcription_final".to_owned(),
            "true".to_owned(),
        )])));
        assert_eq!(packets.len(), 4, "header, two chunks, trailer");
        let mut reader = StreamReader::new(ReaderLimits::default());
        let now = std::time::Instant::now();
        let mut texts = Vec::new();
        for packet in packets {
            texts.extend(reader.receive_packet(packet, now).unwrap());
        }
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0].text, "Hello there.");
        assert_eq!(texts[0].attributes["lk.segment_id"], "SG_1");
        assert_eq!(texts[0].attributes["lk.transcription_final"], "true");
    }
}
