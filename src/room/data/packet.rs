//! `livekit_protocol::DataPacket` on the wire: decoding with a size limit
//! into the few kinds a voice agent acts on, and encoding into a reused
//! buffer.

use livekit_protocol as proto;
use prost::Message as _;
use proto::data_packet::Value;

/// The largest data packet accepted or sent. A text-stream chunk is at most
/// 15 000 bytes of text plus a small envelope; user packets carry chat-sized
/// payloads. Anything larger is refused before it is parsed.
pub const MAX_DATA_PACKET: usize = 64 * 1024;

/// A decoded data packet, reduced to what the room acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// `publishData`: an opaque payload, maybe with a topic.
    User {
        sender: String,
        topic: Option<String>,
        payload: Vec<u8>,
        destinations: Vec<String>,
    },
    /// A text or byte stream opens.
    StreamHeader {
        sender: String,
        header: proto::data_stream::Header,
    },
    /// The next piece of an open stream.
    StreamChunk {
        sender: String,
        chunk: proto::data_stream::Chunk,
    },
    /// A stream ends (a non-empty reason means it was abandoned).
    StreamTrailer {
        sender: String,
        trailer: proto::data_stream::Trailer,
    },
    /// A packet kind the agent does not act on (RPC, metrics, DTMF, ...),
    /// named for logs.
    Ignored(&'static str),
}

/// Why a data packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error(
        "data packet of {len} bytes exceeds the {max}-byte limit; split the payload (text streams chunk at 15 000 bytes)"
    )]
    Oversized { len: usize, max: usize },
    #[error("not a LiveKit DataPacket: {0}")]
    Malformed(String),
    #[error("DataPacket carries no value (neither user data nor a stream part)")]
    Empty,
    #[error(
        "end-to-end encrypted data packets are not supported; disable E2EE for the agent's room"
    )]
    Encrypted,
}

/// Parses one data-channel message. Never panics; memory is bounded by
/// [`MAX_DATA_PACKET`].
pub fn decode_packet(bytes: &[u8]) -> Result<Received, DataError> {
    decode_envelope(bytes).and_then(classify)
}

/// Parses one data-channel message into the protocol type, with the size
/// limit.
pub fn decode_envelope(bytes: &[u8]) -> Result<proto::DataPacket, DataError> {
    if bytes.len() > MAX_DATA_PACKET {
        return Err(DataError::Oversized {
            len: bytes.len(),
            max: MAX_DATA_PACKET,
        });
    }
    proto::DataPacket::decode(bytes).map_err(|e| DataError::Malformed(e.to_string()))
}

/// Sorts a decoded packet into what the room acts on.
#[allow(deprecated)] // the sender may still be named in UserPacket's old field
pub fn classify(packet: proto::DataPacket) -> Result<Received, DataError> {
    let sender = packet.participant_identity;
    let value = packet.value.ok_or(DataError::Empty)?;
    Ok(match value {
        Value::User(user) => Received::User {
            sender: if sender.is_empty() {
                user.participant_identity
            } else {
                sender
            },
            topic: user.topic,
            payload: user.payload,
            destinations: if packet.destination_identities.is_empty() {
                user.destination_identities
            } else {
                packet.destination_identities
            },
        },
        Value::StreamHeader(header) => Received::StreamHeader { sender, header },
        Value::StreamChunk(chunk) => Received::StreamChunk { sender, chunk },
        Value::StreamTrailer(trailer) => Received::StreamTrailer { sender, trailer },
        Value::EncryptedPacket(_) => return Err(DataError::Encrypted),
        Value::Speaker(_) => Received::Ignored("speaker"),
        Value::SipDtmf(_) => Received::Ignored("sip_dtmf"),
        Value::Transcription(_) => Received::Ignored("transcription"),
        Value::Metrics(_) => Received::Ignored("metrics"),
        Value::ChatMessage(_) => Received::Ignored("chat_message"),
        Value::RpcRequest(_) => Received::Ignored("rpc_request"),
        Value::RpcAck(_) => Received::Ignored("rpc_ack"),
        Value::RpcResponse(_) => Received::Ignored("rpc_response"),
    })
}

/// Encodes `packet` into `out` (cleared first, capacity kept).
pub fn encode_packet(packet: &proto::DataPacket, out: &mut Vec<u8>) -> Result<(), DataError> {
    out.clear();
    let len = packet.encoded_len();
    if len > MAX_DATA_PACKET {
        return Err(DataError::Oversized {
            len,
            max: MAX_DATA_PACKET,
        });
    }
    out.reserve(len);
    packet
        .encode(out)
        .map_err(|e| DataError::Malformed(e.to_string()))
}

/// A reliable user packet from `sender` on `topic`, to `destinations` (every
/// participant when empty).
pub fn user_packet(
    sender: &str,
    topic: Option<&str>,
    payload: Vec<u8>,
    destinations: Vec<String>,
) -> proto::DataPacket {
    #[allow(deprecated)] // `kind` is still read by older servers and SDKs
    proto::DataPacket {
        kind: proto::data_packet::Kind::Reliable as i32,
        participant_identity: sender.to_owned(),
        destination_identities: destinations,
        value: Some(Value::User(proto::UserPacket {
            payload,
            topic: topic.map(str::to_owned),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_packet_round_trips_with_topic_and_destinations() {
        let packet = user_packet(
            "agent",
            Some("lk.chat"),
            b"hi".to_vec(),
            vec!["caller".into()],
        );
        let mut bytes = Vec::new();
        encode_packet(&packet, &mut bytes).unwrap();
        assert_eq!(
            decode_packet(&bytes).unwrap(),
            Received::User {
                sender: "agent".into(),
                topic: Some("lk.chat".into()),
                payload: b"hi".to_vec(),
                destinations: vec!["caller".into()],
            }
        );
    }

    #[test]
    fn an_oversized_message_is_refused_before_parsing() {
        let bytes = vec![0u8; MAX_DATA_PACKET + 1];
        assert_eq!(
            decode_packet(&bytes),
            Err(DataError::Oversized {
                len: MAX_DATA_PACKET + 1,
                max: MAX_DATA_PACKET
            })
        );
    }

    #[test]
    fn an_oversized_packet_is_not_encoded() {
        let packet = user_packet("agent", None, vec![7; MAX_DATA_PACKET], vec![]);
        let mut bytes = Vec::new();
        assert!(matches!(
            encode_packet(&packet, &mut bytes),
            Err(DataError::Oversized { .. })
        ));
    }

    #[test]
    fn garbage_is_a_malformed_packet() {
        assert!(matches!(
            decode_packet(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(DataError::Malformed(_))
        ));
    }

    #[test]
    fn a_packet_without_a_value_is_refused() {
        let mut bytes = Vec::new();
        encode_packet(&proto::DataPacket::default(), &mut bytes).unwrap();
        assert_eq!(decode_packet(&bytes), Err(DataError::Empty));
    }

    #[test]
    fn encrypted_packets_say_e2ee_is_unsupported() {
        let packet = proto::DataPacket {
            value: Some(Value::EncryptedPacket(proto::EncryptedPacket::default())),
            ..Default::default()
        };
        let mut bytes = Vec::new();
        encode_packet(&packet, &mut bytes).unwrap();
        assert_eq!(decode_packet(&bytes), Err(DataError::Encrypted));
    }

    #[test]
    fn rpc_and_metrics_are_ignored_by_name() {
        let packet = proto::DataPacket {
            value: Some(Value::RpcRequest(proto::RpcRequest::default())),
            ..Default::default()
        };
        let mut bytes = Vec::new();
        encode_packet(&packet, &mut bytes).unwrap();
        assert_eq!(decode_packet(&bytes), Ok(Received::Ignored("rpc_request")));
    }
}
