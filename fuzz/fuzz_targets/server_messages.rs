//! The worker's handling of LiveKit server frames: a sequence of binary
//! frames through the registered connection's path (size limit, protobuf
//! decode, `server_action`) against a real worker ledger, checked against a
//! model of which jobs are reserved.
//!
//! Input: one flags byte (bits 0-1: max_sessions - 1, bit 2: draining,
//! bit 3: a 64-byte frame limit), then frames, each a little-endian u16
//! length and that many bytes.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use livekit_protocol as proto;
use prost::Message as _;
use proto::server_message::Message as ServerMessage;
use voxguard::worker::ServerAction;
use voxguard::worker::fuzzing::ServerFrames;
use voxguard::room::AGENT_STATE_ATTRIBUTE;
use voxguard::worker::protocol::{ConnectError, ProtocolError};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let max_sessions = u32::from(flags & 0b11) + 1;
    let draining = flags & 0b100 != 0;
    let frame_limit = if flags & 0b1000 != 0 { 64 } else { 1 << 16 };
    let worker = ServerFrames::new(max_sessions, frame_limit);
    if draining {
        worker.drain();
    }
    let mut reserved: HashSet<String> = HashSet::new();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (frame, tail) = rest[2..].split_at(len);
        rest = tail;
        let sent = proto::ServerMessage::decode(frame)
            .ok()
            .and_then(|m| m.message);
        match worker.binary_frame(frame) {
            Err(ConnectError::Protocol(ProtocolError::Oversized { size, limit })) => {
                assert!(frame.len() > frame_limit);
                assert_eq!((size, limit), (frame.len(), frame_limit));
            }
            Err(ConnectError::Protocol(ProtocolError::Decode(_))) => {
                assert!(frame.len() <= frame_limit);
                assert!(sent.is_none(), "a decodable frame was refused");
            }
            Err(other) => panic!("a binary frame ended the link with {other:?}"),
            Ok(action) => {
                assert!(frame.len() <= frame_limit);
                let sent = sent.expect("an undecodable frame was accepted");
                check(&sent, &action, draining, max_sessions, &mut reserved);
            }
        }
        let snapshot = worker.snapshot();
        assert_eq!(snapshot.pending_jobs, reserved.len());
        assert_eq!(snapshot.active_jobs, 0);
        assert!(snapshot.pending_jobs <= worker.max_sessions() as usize);
    }
});

/// The action fits the message, and the ledger moved as the model says.
fn check(
    sent: &ServerMessage,
    action: &ServerAction,
    draining: bool,
    max_sessions: u32,
    reserved: &mut HashSet<String>,
) {
    match (sent, action) {
        (ServerMessage::Availability(request), ServerAction::Answer(answer)) => {
            let job = request
                .job
                .as_ref()
                .expect("answered a request without a job");
            assert_eq!(answer.job_id, job.id);
            let free =
                !draining && !reserved.contains(&job.id) && reserved.len() < max_sessions as usize;
            assert_eq!(answer.available, free, "job {:?}", job.id);
            if answer.available {
                reserved.insert(job.id.clone());
                assert_eq!(answer.participant_identity, format!("agent-{}", job.id));
                assert!(!answer.participant_name.is_empty());
                assert!(
                    answer
                        .participant_attributes
                        .contains_key(AGENT_STATE_ATTRIBUTE)
                );
            } else {
                assert!(answer.participant_identity.is_empty());
            }
        }
        (ServerMessage::Availability(request), ServerAction::Nothing) => {
            assert!(request.job.is_none());
        }
        (ServerMessage::Assignment(sent), ServerAction::Start(assignment)) => {
            assert_eq!(sent, &**assignment);
        }
        (ServerMessage::Termination(termination), ServerAction::Nothing) => {
            reserved.remove(&termination.job_id);
        }
        (ServerMessage::Register(_) | ServerMessage::Pong(_), ServerAction::Nothing) => {}
        (ServerMessage::GoAway(_), ServerAction::Close(ConnectError::Closed(_))) => {}
        (sent, action) => panic!("{sent:?} led to {action:?}"),
    }
}
