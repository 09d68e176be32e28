//! ICE candidates: the host's own interface addresses (never only
//! 127.0.0.1, which works on one machine and nowhere else), the STUN
//! servers a JoinResponse lists, and the `candidateInit` JSON that LiveKit's
//! TrickleRequest carries.
//!
//! There is no TURN client: a caller behind a NAT that only TURN can cross
//! does not get media. [`ice_servers`] says so when the server offers only
//! TURN, so the room can log it.

use std::net::{IpAddr, SocketAddr};

use livekit_protocol as proto;
use serde::{Deserialize, Serialize};
use str0m::Candidate;

/// Which interface addresses become host candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loopback {
    /// Production: loopback interfaces are left out.
    #[default]
    Exclude,
    /// Tests on one machine: 127.0.0.1 (and ::1) are candidates too.
    Include,
}

/// The addresses to bind host sockets on: every interface that is up,
/// except link-local ones (no peer can route to them) and, unless asked,
/// loopback.
pub fn host_addresses(loopback: Loopback) -> std::io::Result<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = if_addrs::get_if_addrs()?
        .into_iter()
        .map(|interface| interface.ip())
        .filter(|ip| usable_host_address(*ip, loopback))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Loopback candidates for a LiveKit server at `url`: only when the server
/// itself is on this machine (its host is `localhost` or a loopback
/// address), the one case where a peer can reach 127.0.0.1.
pub fn loopback_for_server(url: &str) -> Loopback {
    let host = url
        .parse::<tokio_tungstenite::tungstenite::http::Uri>()
        .ok()
        .and_then(|uri| {
            uri.host()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        });
    let local = host.is_some_and(|host| {
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    });
    if local {
        Loopback::Include
    } else {
        Loopback::Exclude
    }
}

/// Whether `ip` can be a host candidate.
pub fn usable_host_address(ip: IpAddr, loopback: Loopback) -> bool {
    if ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    if ip.is_loopback() {
        return loopback == Loopback::Include;
    }
    match ip {
        IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_broadcast(),
        // fe80::/10
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// The JSON object LiveKit's TrickleRequest carries in `candidateInit`
/// (the browser's RTCIceCandidateInit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateInit {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_m_line_index: Option<u32>,
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// Why a trickled candidate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidateError {
    #[error("candidateInit is not the JSON of an RTCIceCandidateInit: {0}")]
    Json(String),
    #[error("unusable ICE candidate {candidate:?}: {reason}")]
    Candidate { candidate: String, reason: String },
}

impl CandidateInit {
    /// The trickle form of a local candidate (BUNDLE: one transport, so
    /// the first section stands for all).
    pub fn from_candidate(candidate: &Candidate) -> CandidateInit {
        CandidateInit {
            candidate: candidate.to_sdp_string(),
            sdp_mid: Some("0".to_owned()),
            sdp_m_line_index: Some(0),
            username_fragment: candidate.ufrag().map(str::to_owned),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }

    pub fn from_json(json: &str) -> Result<CandidateInit, CandidateError> {
        serde_json::from_str(json).map_err(|e| CandidateError::Json(e.to_string()))
    }

    /// The candidate, or `None` for the end-of-candidates marker (an empty
    /// candidate string).
    pub fn parse(&self) -> Result<Option<Candidate>, CandidateError> {
        let line = self.candidate.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.is_empty() {
            return Ok(None);
        }
        Candidate::from_sdp_string(line)
            .map(Some)
            .map_err(|e| CandidateError::Candidate {
                candidate: line.chars().take(120).collect(),
                reason: e.to_string(),
            })
    }
}

/// A STUN server to resolve: host and port as written in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunServer {
    pub host: String,
    pub port: u16,
}

/// The JoinResponse's ICE servers as voxguard can use them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServers {
    pub stun: Vec<StunServer>,
    /// TURN URLs offered and not used (no TURN client).
    pub turn_ignored: usize,
}

impl IceServers {
    /// The server offered relays but no STUN: a caller behind a strict NAT
    /// gets no media, and the room should say so.
    pub fn turn_only(&self) -> bool {
        self.stun.is_empty() && self.turn_ignored > 0
    }
}

/// Reads `stun:` URLs (host, optional port, IPv6 in brackets) and counts
/// `turn:`/`turns:` ones.
pub fn ice_servers(servers: &[proto::IceServer]) -> IceServers {
    let mut out = IceServers::default();
    for url in servers.iter().flat_map(|s| s.urls.iter()) {
        if let Some(rest) = url.strip_prefix("stun:") {
            if let Some(server) = parse_host_port(rest.split('?').next().unwrap_or(""), 3478)
                && !out.stun.contains(&server)
            {
                out.stun.push(server);
            }
        } else if url.starts_with("turn:") || url.starts_with("turns:") {
            out.turn_ignored += 1;
        }
    }
    out
}

fn parse_host_port(text: &str, default_port: u16) -> Option<StunServer> {
    if text.is_empty() {
        return None;
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some(StunServer {
            host: host.to_owned(),
            port,
        });
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some(StunServer {
            host: host.to_owned(),
            port: port.parse().ok()?,
        }),
        Some(_) => None,
        None => Some(StunServer {
            host: text.to_owned(),
            port: default_port,
        }),
    }
}

/// A host candidate for a bound socket.
pub fn host_candidate(addr: SocketAddr) -> Result<Candidate, CandidateError> {
    Candidate::host(addr, "udp").map_err(|e| CandidateError::Candidate {
        candidate: addr.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_candidates_only_for_a_server_on_this_machine() {
        for url in [
            "ws://127.0.0.1:7880",
            "http://localhost:7880",
            "ws://[::1]:7880",
        ] {
            assert_eq!(loopback_for_server(url), Loopback::Include, "{url}");
        }
        for url in ["wss://x.livekit.cloud", "ws://10.0.0.5:7880", "not a url"] {
            assert_eq!(loopback_for_server(url), Loopback::Exclude, "{url}");
        }
    }

    #[test]
    fn loopback_is_a_host_address_only_when_asked() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!usable_host_address(lo, Loopback::Exclude));
        assert!(usable_host_address(lo, Loopback::Include));
        assert!(!usable_host_address(
            "169.254.1.1".parse().unwrap(),
            Loopback::Include
        ));
        assert!(!usable_host_address(
            "fe80::1".parse().unwrap(),
            Loopback::Include
        ));
        assert!(usable_host_address(
            "10.1.2.3".parse().unwrap(),
            Loopback::Exclude
        ));
        assert!(usable_host_address(
            "2001:db8::5".parse().unwrap(),
            Loopback::Exclude
        ));
    }

    #[test]
    fn enumerated_host_addresses_leave_loopback_out_by_default() {
        let addresses = host_addresses(Loopback::Exclude).unwrap();
        assert!(addresses.iter().all(|ip| !ip.is_loopback()));
        let with_loopback = host_addresses(Loopback::Include).unwrap();
        assert!(with_loopback.iter().any(|ip| ip.is_loopback()));
    }

    #[test]
    fn candidate_init_json_round_trips_with_browser_field_names() {
        let candidate = host_candidate("192.0.2.4:50000".parse().unwrap()).unwrap();
        let init = CandidateInit::from_candidate(&candidate);
        let json = init.to_json();
        assert!(json.contains("\"sdpMLineIndex\":0"), "{json}");
        assert!(json.contains("\"sdpMid\":\"0\""), "{json}");
        let back = CandidateInit::from_json(&json)
            .unwrap()
            .parse()
            .unwrap()
            .unwrap();
        assert_eq!(back.addr(), "192.0.2.4:50000".parse().unwrap());
    }

    #[test]
    fn a_candidate_line_with_the_attribute_prefix_is_accepted() {
        let init = CandidateInit {
            candidate: "a=candidate:1 1 udp 2130706431 198.51.100.3 7882 typ host".into(),
            sdp_mid: None,
            sdp_m_line_index: None,
            username_fragment: None,
        };
        assert_eq!(
            init.parse().unwrap().unwrap().addr(),
            "198.51.100.3:7882".parse().unwrap()
        );
    }

    #[test]
    fn an_empty_candidate_is_the_end_of_candidates() {
        let init = CandidateInit::from_json(r#"{"candidate":""}"#).unwrap();
        assert_eq!(init.parse(), Ok(None));
    }

    #[test]
    fn garbage_candidates_are_typed_errors() {
        assert!(matches!(
            CandidateInit::from_json("{"),
            Err(CandidateError::Json(_))
        ));
        let init = CandidateInit::from_json(r#"{"candidate":"candidate:nonsense"}"#).unwrap();
        assert!(matches!(
            init.parse(),
            Err(CandidateError::Candidate { .. })
        ));
    }

    #[test]
    fn stun_urls_are_read_and_turn_is_counted() {
        let servers = vec![proto::IceServer {
            urls: vec![
                "stun:stun.example.net:19302".into(),
                "stun:[2001:db8::1]:3478".into(),
                "stun:plain.example.net".into(),
                "turn:turn.example.net:3478?transport=udp".into(),
                "turns:turn.example.net:443".into(),
            ],
            ..Default::default()
        }];
        let parsed = ice_servers(&servers);
        assert_eq!(
            parsed.stun,
            vec![
                StunServer {
                    host: "stun.example.net".into(),
                    port: 19302
                },
                StunServer {
                    host: "2001:db8::1".into(),
                    port: 3478
                },
                StunServer {
                    host: "plain.example.net".into(),
                    port: 3478
                },
            ]
        );
        assert_eq!(parsed.turn_ignored, 2);
        assert!(!parsed.turn_only());
    }

    #[test]
    fn a_server_offering_only_turn_is_flagged() {
        let servers = vec![proto::IceServer {
            urls: vec!["turns:turn.example.net:443?transport=tcp".into()],
            ..Default::default()
        }];
        assert!(ice_servers(&servers).turn_only());
    }
}
