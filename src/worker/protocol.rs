//! The wire details of LiveKit's agent protocol that both ends share: one
//! protobuf message per binary WebSocket frame, the worker's access token,
//! the reconnect backoff, and the errors a connection attempt ends with.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;
use prost::Message as _;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::config::ReconnectPolicy;

/// How long the worker's own token stays valid; it is minted per connection attempt.
pub const WORKER_TOKEN_TTL: Duration = Duration::from_secs(600);

pub fn encode_worker(message: proto::worker_message::Message) -> Vec<u8> {
    proto::WorkerMessage {
        message: Some(message),
    }
    .encode_to_vec()
}

pub fn encode_server(message: proto::server_message::Message) -> Vec<u8> {
    proto::ServerMessage {
        message: Some(message),
    }
    .encode_to_vec()
}

/// Decodes one server frame; an empty oneof is as malformed as bad bytes.
pub fn decode_server(bytes: &[u8]) -> Result<proto::server_message::Message, ProtocolError> {
    proto::ServerMessage::decode(bytes)
        .map_err(|e| ProtocolError::Decode(e.to_string()))?
        .message
        .ok_or_else(|| ProtocolError::Decode("server message without content".into()))
}

pub fn decode_worker(bytes: &[u8]) -> Result<proto::worker_message::Message, ProtocolError> {
    proto::WorkerMessage::decode(bytes)
        .map_err(|e| ProtocolError::Decode(e.to_string()))?
        .message
        .ok_or_else(|| ProtocolError::Decode("worker message without content".into()))
}

/// A worker token: HS256, issuer = API key, with an expiry and the `agent` video grant.
pub fn worker_token(api_key: &str, api_secret: &str) -> Result<String, ConnectError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_ttl(WORKER_TOKEN_TTL)
        .with_grants(VideoGrants {
            agent: true,
            ..Default::default()
        })
        .to_jwt()
        .map_err(|e| ConnectError::Token(e.to_string()))
}

/// Why one connection (attempt or established link) ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "the LiveKit server rejected the worker's credentials (HTTP {status}); check LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
    )]
    Unauthorized { status: u16 },
    #[error("could not mint the worker token: {0}")]
    Token(String),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the server did not acknowledge registration within {0:?}")]
    RegisterTimeout(Duration),
    #[error("no message from the server for {0:?}; the link is considered dead")]
    DeadLink(Duration),
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("the connection closed: {0}")]
    Closed(String),
}

impl ConnectError {
    pub fn is_auth(&self) -> bool {
        matches!(self, ConnectError::Unauthorized { .. })
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectError::Unauthorized { .. } => "unauthorized",
            ConnectError::Token(_) => "token",
            ConnectError::Connect(_) => "connect",
            ConnectError::RegisterTimeout(_) => "register_timeout",
            ConnectError::DeadLink(_) => "dead_link",
            ConnectError::Protocol(_) => "protocol",
            ConnectError::Closed(_) => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("undecodable frame: {0}")]
    Decode(String),
    #[error("unexpected text frame")]
    TextFrame,
    #[error("frame of {size} bytes exceeds the {limit}-byte limit")]
    Oversized { size: usize, limit: usize },
}

/// Capped exponential backoff with full jitter; the first retry comes fast.
#[derive(Debug)]
pub struct ReconnectBackoff {
    policy: ReconnectPolicy,
    failures: u32,
    rng: SmallRng,
}

impl ReconnectBackoff {
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Self {
        Self {
            policy,
            failures: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The sleep before the next attempt, or `None` once max retries are spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self
            .policy
            .max_retries
            .is_some_and(|max| self.failures >= max)
        {
            return None;
        }
        self.failures += 1;
        if self.failures == 1 {
            return Some(self.policy.first);
        }
        let exponent = (self.failures - 2).min(20);
        let ceiling = self
            .policy
            .base
            .saturating_mul(1 << exponent)
            .min(self.policy.cap);
        let floor = ceiling / 2;
        let jitter = self
            .rng
            .random_range(0..=(ceiling - floor).as_millis() as u64);
        Some(floor + Duration::from_millis(jitter))
    }

    /// A registered connection resets the count.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_retry_is_fast_and_later_ones_grow_up_to_the_cap() {
        let policy = ReconnectPolicy {
            max_retries: None,
            first: Duration::from_millis(50),
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            seed: None,
        };
        let mut backoff = ReconnectBackoff::new(policy, 7);
        assert_eq!(backoff.next_delay(), Some(Duration::from_millis(50)));
        let delays: Vec<_> = (0..12).map(|_| backoff.next_delay().unwrap()).collect();
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        assert!(
            delays[11] >= Duration::from_secs(1),
            "late delays sit near the cap"
        );
    }

    #[test]
    fn max_retries_ends_the_sequence() {
        let policy = ReconnectPolicy {
            max_retries: Some(2),
            ..ReconnectPolicy::default()
        };
        let mut backoff = ReconnectBackoff::new(policy, 1);
        assert!(backoff.next_delay().is_some());
        assert!(backoff.next_delay().is_some());
        assert_eq!(backoff.next_delay(), None);
        backoff.reset();
        assert!(backoff.next_delay().is_some());
    }

    #[test]
    fn garbage_bytes_decode_to_an_error_not_a_panic() {
        assert!(decode_server(&[0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(decode_server(&[]).is_err());
    }

    #[test]
    fn worker_token_carries_the_agent_grant_and_expiry() {
        let token = worker_token("key", "secret").unwrap();
        let verifier = livekit_api::access_token::TokenVerifier::with_api_key("key", "secret");
        let claims = verifier.verify(&token).unwrap();
        assert!(claims.video.agent);
        assert_eq!(claims.iss, "key");
        assert!(claims.exp > 0);
    }
}
