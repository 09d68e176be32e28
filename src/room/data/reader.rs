//! Incoming text streams: headers, chunks and trailers from any number of
//! senders reassembled per (sender identity, stream id) into whole texts
//! with their topic and attributes. Limits keep memory bounded whatever a
//! peer sends: open streams per sender and in all, bytes per stream, and an
//! idle timeout checked with time passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use livekit_protocol as proto;
use proto::data_stream::{CompressionType, Header, header::ContentHeader};

use super::packet::{DataError, Received, classify, decode_envelope};

/// Bounds on what a [`StreamReader`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Streams one sender may have open at once.
    pub open_per_sender: usize,
    /// Streams open in all, across senders.
    pub open_total: usize,
    /// Bytes of text one stream may reach.
    pub bytes_per_stream: usize,
    /// A stream with no packet for this long is dropped.
    pub idle_timeout: Duration,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            open_per_sender: 8,
            open_total: 64,
            bytes_per_stream: 256 * 1024,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A complete text received on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMessage {
    pub sender: String,
    pub stream_id: String,
    pub topic: String,
    /// The header's attributes, updated by the trailer's.
    pub attributes: HashMap<String, String>,
    pub text: String,
    /// When the sender opened the stream, Unix milliseconds.
    pub timestamp_ms: i64,
}

/// Why a stream packet was refused; the stream it names (if open) is
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Packet(#[from] DataError),
    #[error("stream packet without a sender identity")]
    NoSender,
    #[error(
        "chunk or trailer for stream {stream_id:?} from {sender:?}, which is not open (no header, or already ended)"
    )]
    UnknownStream { sender: String, stream_id: String },
    #[error("stream {stream_id:?} is already open for {sender:?}")]
    DuplicateStream { sender: String, stream_id: String },
    #[error("stream {stream_id:?}: chunk {got} arrived where chunk {expected} was due")]
    OutOfOrder {
        stream_id: String,
        expected: u64,
        got: u64,
    },
    #[error("stream {stream_id:?} exceeds {limit} bytes (declared or received)")]
    TooLarge { stream_id: String, limit: usize },
    #[error("{sender:?} already has {limit} streams open")]
    TooManyFromSender { sender: String, limit: usize },
    #[error("{limit} streams are already open in the room")]
    TooManyOpen { limit: usize },
    #[error("stream {stream_id:?} is a byte stream; only text streams are read")]
    ByteStream { stream_id: String },
    #[error("stream {stream_id:?} is compressed; compressed streams are not supported")]
    Compressed { stream_id: String },
    #[error("stream {stream_id:?} is not valid UTF-8 text")]
    NotUtf8 { stream_id: String },
    #[error("stream {stream_id:?} declared {declared} bytes but carried {received}")]
    LengthMismatch {
        stream_id: String,
        declared: u64,
        received: u64,
    },
    #[error("stream {stream_id:?} was abandoned by its sender: {reason}")]
    Abandoned { stream_id: String, reason: String },
    #[error("stream {stream_id:?} from {sender:?} was idle for {idle:?} and was dropped")]
    Idle {
        sender: String,
        stream_id: String,
        idle: Duration,
    },
}

#[derive(Debug)]
struct Partial {
    topic: String,
    attributes: HashMap<String, String>,
    timestamp_ms: i64,
    declared_length: Option<u64>,
    next_chunk: u64,
    text: Vec<u8>,
    last_packet: Instant,
}

/// Reassembles incoming text streams. Feed it every data packet; it
/// answers with a [`TextMessage`] when a stream completes.
#[derive(Debug)]
pub struct StreamReader {
    limits: ReaderLimits,
    open: HashMap<(String, String), Partial>,
}

impl StreamReader {
    pub fn new(limits: ReaderLimits) -> StreamReader {
        StreamReader {
            limits,
            open: HashMap::new(),
        }
    }

    /// Streams currently open.
    pub fn open_streams(&self) -> usize {
        self.open.len()
    }

    /// Bytes of text currently held for open streams.
    pub fn buffered_bytes(&self) -> usize {
        self.open.values().map(|p| p.text.len()).sum()
    }

    /// Decodes one data-channel message and feeds it in. `Ok(None)` when the
    /// packet was not the end of a text stream.
    pub fn receive_bytes(
        &mut self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<TextMessage>, StreamError> {
        let packet = decode_envelope(bytes)?;
        self.receive_packet(packet, now)
    }

    /// Feeds one decoded packet in.
    pub fn receive_packet(
        &mut self,
        packet: proto::DataPacket,
        now: Instant,
    ) -> Result<Option<TextMessage>, StreamError> {
        self.receive(classify(packet)?, now)
    }

    /// Feeds one classified packet in; user packets and ignored kinds pass
    /// through as `Ok(None)`.
    pub fn receive(
        &mut self,
        received: Received,
        now: Instant,
    ) -> Result<Option<TextMessage>, StreamError> {
        match received {
            Received::StreamHeader { sender, header } => {
                self.open_stream(sender, header, now).map(|()| None)
            }
            Received::StreamChunk { sender, chunk } => {
                let key = (sender, chunk.stream_id);
                let limit = self.limits.bytes_per_stream;
                let Some(partial) = self.open.get_mut(&key) else {
                    return Err(StreamError::UnknownStream {
                        sender: key.0,
                        stream_id: key.1,
                    });
                };
                if chunk.chunk_index != partial.next_chunk {
                    let expected = partial.next_chunk;
                    self.open.remove(&key);
                    return Err(StreamError::OutOfOrder {
                        stream_id: key.1,
                        expected,
                        got: chunk.chunk_index,
                    });
                }
                if partial.text.len() + chunk.content.len() > limit {
                    self.open.remove(&key);
                    return Err(StreamError::TooLarge {
                        stream_id: key.1,
                        limit,
                    });
                }
                partial.text.extend_from_slice(&chunk.content);
                partial.next_chunk += 1;
                partial.last_packet = now;
                Ok(None)
            }
            Received::StreamTrailer { sender, trailer } => {
                let key = (sender, trailer.stream_id);
                let Some(partial) = self.open.remove(&key) else {
                    return Err(StreamError::UnknownStream {
                        sender: key.0,
                        stream_id: key.1,
                    });
                };
                let (sender, stream_id) = key;
                if !trailer.reason.is_empty() {
                    return Err(StreamError::Abandoned {
                        stream_id,
                        reason: trailer.reason,
                    });
                }
                let received = partial.text.len() as u64;
                if let Some(declared) = partial.declared_length
                    && declared != received
                {
                    return Err(StreamError::LengthMismatch {
                        stream_id,
                        declared,
                        received,
                    });
                }
                let text = String::from_utf8(partial.text).map_err(|_| StreamError::NotUtf8 {
                    stream_id: stream_id.clone(),
                })?;
                let mut attributes = partial.attributes;
                attributes.extend(trailer.attributes);
                Ok(Some(TextMessage {
                    sender,
                    stream_id,
                    topic: partial.topic,
                    attributes,
                    text,
                    timestamp_ms: partial.timestamp_ms,
                }))
            }
            Received::User { .. } | Received::Ignored(_) => Ok(None),
        }
    }

    fn open_stream(
        &mut self,
        sender: String,
        header: Header,
        now: Instant,
    ) -> Result<(), StreamError> {
        if sender.is_empty() {
            return Err(StreamError::NoSender);
        }
        let stream_id = header.stream_id;
        match header.content_header {
            Some(ContentHeader::TextHeader(_)) => {}
            Some(ContentHeader::ByteHeader(_)) | None => {
                return Err(StreamError::ByteStream { stream_id });
            }
        }
        if header.compression != CompressionType::None as i32 {
            return Err(StreamError::Compressed { stream_id });
        }
        let limit = self.limits.bytes_per_stream;
        let inline = header.inline_content.unwrap_or_default();
        if header.total_length.is_some_and(|n| n > limit as u64) || inline.len() > limit {
            return Err(StreamError::TooLarge { stream_id, limit });
        }
        let key = (sender, stream_id);
        if self.open.contains_key(&key) {
            return Err(StreamError::DuplicateStream {
                sender: key.0,
                stream_id: key.1,
            });
        }
        let from_sender = self.open.keys().filter(|(s, _)| *s == key.0).count();
        if from_sender >= self.limits.open_per_sender {
            return Err(StreamError::TooManyFromSender {
                sender: key.0,
                limit: self.limits.open_per_sender,
            });
        }
        if self.open.len() >= self.limits.open_total {
            return Err(StreamError::TooManyOpen {
                limit: self.limits.open_total,
            });
        }
        self.open.insert(
            key,
            Partial {
                topic: header.topic,
                attributes: header.attributes,
                timestamp_ms: header.timestamp,
                declared_length: header.total_length,
                next_chunk: 0,
                text: inline,
                last_packet: now,
            },
        );
        Ok(())
    }

    /// When the next open stream goes idle, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|p| p.last_packet + self.limits.idle_timeout)
            .min()
    }

    /// Drops the streams idle at `now`, saying which.
    pub fn expire(&mut self, now: Instant) -> Vec<StreamError> {
        let timeout = self.limits.idle_timeout;
        let idle: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_packet) >= timeout)
            .map(|(key, _)| key.clone())
            .collect();
        idle.into_iter()
            .filter_map(|key| {
                let partial = self.open.remove(&key)?;
                Some(StreamError::Idle {
                    sender: key.0,
                    stream_id: key.1,
                    idle: now.saturating_duration_since(partial.last_packet),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::{TextStreamOptions, text_stream};
    use super::*;
    use proto::data_packet::Value;

    fn feed(
        reader: &mut StreamReader,
        packets: impl IntoIterator<Item = proto::DataPacket>,
        now: Instant,
    ) -> Vec<Result<Option<TextMessage>, StreamError>> {
        packets
            .into_iter()
            .map(|p| reader.receive_packet(p, now))
            .collect()
    }

    fn stream(sender: &str, id: &str, text: &str) -> Vec<proto::DataPacket> {
        let options = TextStreamOptions::new("lk.chat").attribute("k", "v");
        text_stream(sender, text, &options, id.into(), 42).collect()
    }

    #[test]
    fn a_whole_stream_becomes_one_message_with_topic_and_attributes() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let results = feed(
            &mut reader,
            stream("caller", "s1", "book me in"),
            Instant::now(),
        );
        let message = results.last().unwrap().clone().unwrap().unwrap();
        assert_eq!(message.text, "book me in");
        assert_eq!(message.topic, "lk.chat");
        assert_eq!(message.sender, "caller");
        assert_eq!(message.attributes["k"], "v");
        assert_eq!(message.timestamp_ms, 42);
        assert_eq!(reader.open_streams(), 0);
    }

    #[test]
    fn interleaved_streams_from_two_senders_stay_apart() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let now = Instant::now();
        let a = stream("alice", "same-id", "from alice");
        let b = stream("bob", "same-id", "from bob");
        let mut done = Vec::new();
        for (pa, pb) in a.into_iter().zip(b) {
            done.extend(reader.receive_packet(pa, now).unwrap());
            done.extend(reader.receive_packet(pb, now).unwrap());
        }
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].text, "from alice");
        assert_eq!(done[1].text, "from bob");
    }

    #[test]
    fn a_chunk_out_of_order_drops_the_stream() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let now = Instant::now();
        let mut packets = stream("caller", "s1", "hello");
        if let Some(Value::StreamChunk(chunk)) = &mut packets[1].value {
            chunk.chunk_index = 3;
        }
        let results = feed(&mut reader, packets, now);
        assert_eq!(
            results[1],
            Err(StreamError::OutOfOrder {
                stream_id: "s1".into(),
                expected: 0,
                got: 3
            })
        );
        assert!(matches!(results[2], Err(StreamError::UnknownStream { .. })));
        assert_eq!(reader.open_streams(), 0);
    }

    #[test]
    fn a_chunk_without_a_header_is_an_unknown_stream() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let packets = stream("caller", "s1", "hello");
        assert_eq!(
            reader.receive_packet(packets[1].clone(), Instant::now()),
            Err(StreamError::UnknownStream {
                sender: "caller".into(),
                stream_id: "s1".into()
            })
        );
    }

    #[test]
    fn a_stream_longer_than_the_limit_is_dropped() {
        let limits = ReaderLimits {
            bytes_per_stream: 20_000,
            ..ReaderLimits::default()
        };
        let mut reader = StreamReader::new(limits);
        let text = "x".repeat(25_000);
        let mut packets = stream("caller", "s1", &text);
        // A sender that lies about the length is caught by the bytes, not the header.
        if let Some(Value::StreamHeader(header)) = &mut packets[0].value {
            header.total_length = None;
        }
        let results = feed(&mut reader, packets, Instant::now());
        assert!(results[1].is_ok());
        assert_eq!(
            results[2],
            Err(StreamError::TooLarge {
                stream_id: "s1".into(),
                limit: 20_000
            })
        );
        assert_eq!(reader.buffered_bytes(), 0);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_at_the_header() {
        let limits = ReaderLimits {
            bytes_per_stream: 10,
            ..ReaderLimits::default()
        };
        let mut reader = StreamReader::new(limits);
        let results = feed(
            &mut reader,
            stream("caller", "s1", "more than ten"),
            Instant::now(),
        );
        assert!(matches!(results[0], Err(StreamError::TooLarge { .. })));
        assert_eq!(reader.open_streams(), 0);
    }

    #[test]
    fn a_sender_cannot_hold_more_than_its_share_of_open_streams() {
        let limits = ReaderLimits {
            open_per_sender: 2,
            ..ReaderLimits::default()
        };
        let mut reader = StreamReader::new(limits);
        let now = Instant::now();
        for id in ["a", "b"] {
            reader
                .receive_packet(stream("caller", id, "x")[0].clone(), now)
                .unwrap();
        }
        assert_eq!(
            reader.receive_packet(stream("caller", "c", "x")[0].clone(), now),
            Err(StreamError::TooManyFromSender {
                sender: "caller".into(),
                limit: 2
            })
        );
        // Another sender still gets in.
        assert!(
            reader
                .receive_packet(stream("other", "c", "x")[0].clone(), now)
                .is_ok()
        );
    }

    #[test]
    fn an_idle_stream_expires_at_the_timeout_and_not_before() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let start = Instant::now();
        let packets = stream("caller", "s1", "hello");
        reader.receive_packet(packets[0].clone(), start).unwrap();
        let deadline = reader.next_deadline().unwrap();
        assert_eq!(deadline, start + Duration::from_secs(30));
        assert!(reader.expire(start + Duration::from_secs(29)).is_empty());
        let expired = reader.expire(deadline);
        assert_eq!(
            expired,
            vec![StreamError::Idle {
                sender: "caller".into(),
                stream_id: "s1".into(),
                idle: Duration::from_secs(30)
            }]
        );
        assert_eq!(reader.next_deadline(), None);
    }

    #[test]
    fn a_trailer_with_a_reason_abandons_the_stream() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let mut packets = stream("caller", "s1", "hello");
        if let Some(Value::StreamTrailer(trailer)) = &mut packets[2].value {
            trailer.reason = "cancelled".into();
        }
        let results = feed(&mut reader, packets, Instant::now());
        assert_eq!(
            results[2],
            Err(StreamError::Abandoned {
                stream_id: "s1".into(),
                reason: "cancelled".into()
            })
        );
    }

    #[test]
    fn invalid_utf8_is_refused_at_the_end() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let mut packets = stream("caller", "s1", "ab");
        if let Some(Value::StreamChunk(chunk)) = &mut packets[1].value {
            chunk.content = vec![0xc3, 0x28];
        }
        let results = feed(&mut reader, packets, Instant::now());
        assert_eq!(
            results[2],
            Err(StreamError::NotUtf8 {
                stream_id: "s1".into()
            })
        );
    }

    #[test]
    fn a_length_mismatch_is_refused() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let mut packets = stream("caller", "s1", "abc");
        if let Some(Value::StreamHeader(header)) = &mut packets[0].value {
            header.total_length = Some(4);
        }
        let results = feed(&mut reader, packets, Instant::now());
        assert!(matches!(
            results[2],
            Err(StreamError::LengthMismatch {
                declared: 4,
                received: 3,
                ..
            })
        ));
    }

    #[test]
    fn byte_streams_are_refused_by_name() {
        let mut reader = StreamReader::new(ReaderLimits::default());
        let mut packets = stream("caller", "s1", "abc");
        if let Some(Value::StreamHeader(header)) = &mut packets[0].value {
            header.content_header = Some(ContentHeader::ByteHeader(Default::default()));
        }
        assert_eq!(
            reader.receive_packet(packets[0].clone(), Instant::now()),
            Err(StreamError::ByteStream {
                stream_id: "s1".into()
            })
        );
    }
}
