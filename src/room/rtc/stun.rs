//! A small STUN binding client (RFC 8489), sans-IO: it asks each STUN
//! server the JoinResponse lists what our host sockets look like from
//! outside, and turns the answers into server-reflexive candidates. The
//! requests leave from the same sockets as the media, so the mapping they
//! learn is the one a peer will reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const HEADER: usize = 20;
/// First retransmission after this; doubled each time (RFC 8489's RTO).
const INITIAL_RTO: Duration = Duration::from_millis(500);
/// Requests sent before a server is given up on (0.5 + 1 + 2 + 4 s).
const MAX_ATTEMPTS: u32 = 4;

/// A STUN transaction id.
pub type TransactionId = [u8; 12];

/// Why a datagram is not a usable binding response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("datagram of {0} bytes is too short or misaligned for STUN")]
    Length(usize),
    #[error("not a STUN message (magic cookie missing)")]
    NotStun,
    #[error("STUN message type {0:#06x} is not a binding response")]
    NotBindingResponse(u16),
    #[error("the STUN server answered the binding request with an error")]
    ErrorResponse,
    #[error("binding response without a (XOR-)MAPPED-ADDRESS")]
    NoAddress,
}

/// A binding request with transaction id `id`.
pub fn binding_request(id: &TransactionId) -> [u8; HEADER] {
    let mut out = [0u8; HEADER];
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Message length 0: no attributes.
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(id);
    out
}

/// Whether `bytes` looks like a STUN binding response (success or error),
/// and its transaction id.
pub fn response_id(bytes: &[u8]) -> Option<TransactionId> {
    if bytes.len() < HEADER || bytes[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return None;
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    if kind != BINDING_SUCCESS && kind != BINDING_ERROR {
        return None;
    }
    bytes[8..20].try_into().ok()
}

/// Parses a binding response into its transaction id and the address the
/// server saw.
pub fn parse_binding_response(bytes: &[u8]) -> Result<(TransactionId, SocketAddr), StunError> {
    if bytes.len() < HEADER {
        return Err(StunError::Length(bytes.len()));
    }
    if bytes[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(StunError::NotStun);
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if !length.is_multiple_of(4) || HEADER + length > bytes.len() {
        return Err(StunError::Length(bytes.len()));
    }
    let id: TransactionId = bytes[8..20].try_into().map_err(|_| StunError::NotStun)?;
    match kind {
        BINDING_SUCCESS => {}
        BINDING_ERROR => return Err(StunError::ErrorResponse),
        other => return Err(StunError::NotBindingResponse(other)),
    }
    let mut attributes = &bytes[HEADER..HEADER + length];
    let mut mapped = None;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let padded = len.div_ceil(4) * 4;
        if 4 + len > attributes.len() {
            return Err(StunError::Length(bytes.len()));
        }
        let value = &attributes[4..4 + len];
        match kind {
            ATTR_XOR_MAPPED_ADDRESS => {
                if let Some(addr) = address(value, Some(&id)) {
                    return Ok((id, addr));
                }
            }
            ATTR_MAPPED_ADDRESS => mapped = mapped.or_else(|| address(value, None)),
            _ => {}
        }
        attributes = attributes.get(4 + padded..).unwrap_or(&[]);
    }
    mapped.map(|addr| (id, addr)).ok_or(StunError::NoAddress)
}

/// Decodes an address attribute; `xor` carries the transaction id when the
/// attribute is XOR-MAPPED-ADDRESS.
fn address(value: &[u8], xor: Option<&TransactionId>) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let family = *value.get(1)?;
    let mut port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    match family {
        0x01 => {
            let mut octets: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            if xor.is_some() {
                for (o, c) in octets.iter_mut().zip(cookie) {
                    *o ^= c;
                }
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(octets)), port))
        }
        0x02 => {
            let mut octets: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            if let Some(id) = xor {
                let key = cookie.iter().chain(id.iter());
                for (o, k) in octets.iter_mut().zip(key) {
                    *o ^= k;
                }
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => None,
    }
}

/// A binding request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunTransmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: [u8; HEADER],
}

/// A server-reflexive address learned for a host socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflexive {
    /// The host socket the request left from.
    pub base: SocketAddr,
    /// The address the STUN server saw.
    pub mapped: SocketAddr,
}

#[derive(Debug)]
struct Transaction {
    id: TransactionId,
    base: SocketAddr,
    server: SocketAddr,
    attempts: u32,
    next_send: Instant,
    done: bool,
}

/// Gathers server-reflexive addresses: one transaction per (host socket,
/// STUN server) of the same IP family, retransmitted on a doubling timer
/// and dropped after [`MAX_ATTEMPTS`].
#[derive(Debug, Default)]
pub struct StunGatherer {
    transactions: Vec<Transaction>,
}

impl StunGatherer {
    pub fn new() -> StunGatherer {
        StunGatherer::default()
    }

    /// Starts asking `servers` about `base` at `now`.
    pub fn gather(&mut self, base: SocketAddr, servers: &[SocketAddr], now: Instant) {
        for server in servers {
            if server.is_ipv4() != base.is_ipv4() || base.ip().is_loopback() {
                continue;
            }
            self.transactions.push(Transaction {
                id: rand::random(),
                base,
                server: *server,
                attempts: 0,
                next_send: now,
                done: false,
            });
        }
    }

    /// The next request due at `now`, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<StunTransmit> {
        let transaction = self
            .transactions
            .iter_mut()
            .find(|t| !t.done && t.attempts < MAX_ATTEMPTS && t.next_send <= now)?;
        transaction.attempts += 1;
        transaction.next_send = now + INITIAL_RTO * (1 << (transaction.attempts - 1));
        Some(StunTransmit {
            source: transaction.base,
            destination: transaction.server,
            contents: binding_request(&transaction.id),
        })
    }

    /// When a request is next due (or a transaction gives up).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transactions
            .iter()
            .filter(|t| !t.done && t.attempts <= MAX_ATTEMPTS)
            .map(|t| t.next_send)
            .min()
    }

    /// Marks transactions that ran out of attempts as done at `now`;
    /// returns how many gave up.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut gave_up = 0;
        for t in &mut self.transactions {
            if !t.done && t.attempts >= MAX_ATTEMPTS && t.next_send <= now {
                t.done = true;
                gave_up += 1;
            }
        }
        gave_up
    }

    /// Whether `bytes` answers one of our requests.
    pub fn owns(&self, bytes: &[u8]) -> bool {
        response_id(bytes).is_some_and(|id| self.transactions.iter().any(|t| t.id == id))
    }

    /// Takes a response; returns the reflexive address it taught, if new.
    pub fn handle_response(
        &mut self,
        source: SocketAddr,
        bytes: &[u8],
    ) -> Result<Option<Reflexive>, StunError> {
        let (id, mapped) = match parse_binding_response(bytes) {
            Ok(parsed) => parsed,
            Err(error) => {
                if let Some(id) = response_id(bytes)
                    && let Some(t) = self.transactions.iter_mut().find(|t| t.id == id)
                {
                    t.done = true;
                }
                return Err(error);
            }
        };
        let Some(transaction) = self
            .transactions
            .iter_mut()
            .find(|t| t.id == id && t.server == source && !t.done)
        else {
            return Ok(None);
        };
        transaction.done = true;
        Ok(Some(Reflexive {
            base: transaction.base,
            mapped,
        }))
    }

    /// Whether every transaction has finished.
    pub fn finished(&self) -> bool {
        self.transactions.iter().all(|t| t.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding success as a STUN server writes it, with an XOR-MAPPED-ADDRESS.
    fn success(id: &TransactionId, mapped: SocketAddr) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
        out.extend_from_slice(&12u16.to_be_bytes());
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
        out.extend_from_slice(&8u16.to_be_bytes());
        out.push(0);
        out.push(0x01);
        out.extend_from_slice(&(mapped.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes());
        let IpAddr::V4(ip) = mapped.ip() else {
            unreachable!()
        };
        let ip = u32::from(ip) ^ MAGIC_COOKIE;
        out.extend_from_slice(&ip.to_be_bytes());
        out
    }

    #[test]
    fn a_binding_request_is_a_bare_header_with_the_cookie() {
        let request = binding_request(&[7; 12]);
        assert_eq!(&request[0..4], &[0, 1, 0, 0]);
        assert_eq!(&request[4..8], &[0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&request[8..], &[7; 12]);
    }

    #[test]
    fn an_xor_mapped_address_is_decoded() {
        let mapped: SocketAddr = "203.0.113.7:40001".parse().unwrap();
        let bytes = success(&[3; 12], mapped);
        assert_eq!(parse_binding_response(&bytes), Ok(([3; 12], mapped)));
    }

    #[test]
    fn the_gatherer_retransmits_on_a_doubling_timer_then_gives_up() {
        let start = Instant::now();
        let mut gatherer = StunGatherer::new();
        let base: SocketAddr = "192.0.2.10:5000".parse().unwrap();
        let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        gatherer.gather(base, &[server], start);
        let first = gatherer.poll_transmit(start).unwrap();
        assert_eq!((first.source, first.destination), (base, server));
        assert!(gatherer.poll_transmit(start).is_none());
        assert_eq!(gatherer.poll_timeout(), Some(start + INITIAL_RTO));
        let mut at = start + INITIAL_RTO;
        for attempt in 2..=MAX_ATTEMPTS {
            assert!(gatherer.poll_transmit(at).is_some(), "attempt {attempt}");
            at += INITIAL_RTO * (1 << (attempt - 1));
        }
        assert!(gatherer.poll_transmit(at).is_none());
        assert_eq!(gatherer.expire(at), 1);
        assert!(gatherer.finished());
    }

    #[test]
    fn a_response_from_the_server_yields_a_reflexive_address_once() {
        let start = Instant::now();
        let mut gatherer = StunGatherer::new();
        let base: SocketAddr = "192.0.2.10:5000".parse().unwrap();
        let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        gatherer.gather(base, &[server], start);
        let request = gatherer.poll_transmit(start).unwrap();
        let id: TransactionId = request.contents[8..20].try_into().unwrap();
        let mapped: SocketAddr = "203.0.113.7:40001".parse().unwrap();
        let response = success(&id, mapped);
        assert!(gatherer.owns(&response));
        assert_eq!(
            gatherer.handle_response(server, &response),
            Ok(Some(Reflexive { base, mapped }))
        );
        assert_eq!(gatherer.handle_response(server, &response), Ok(None));
        assert!(gatherer.finished());
    }

    #[test]
    fn loopback_sockets_and_other_families_are_not_asked_about() {
        let mut gatherer = StunGatherer::new();
        let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        gatherer.gather("127.0.0.1:5000".parse().unwrap(), &[server], Instant::now());
        gatherer.gather(
            "[2001:db8::1]:5000".parse().unwrap(),
            &[server],
            Instant::now(),
        );
        assert!(gatherer.poll_transmit(Instant::now()).is_none());
    }

    #[test]
    fn truncated_responses_are_errors_not_panics() {
        let bytes = success(&[1; 12], "203.0.113.7:1".parse().unwrap());
        for len in 0..bytes.len() {
            let _ = parse_binding_response(&bytes[..len]);
        }
        assert_eq!(
            parse_binding_response(&bytes[..10]),
            Err(StunError::Length(10))
        );
    }
}
