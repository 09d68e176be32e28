//! Which addresses the dev server answers as, and the `Host` and `Origin`
//! checks built on them.
//!
//! The dev page can break services and talk to the agent as the caller, so a
//! web page the developer happens to visit must not reach it: a foreign
//! `Origin` (cross-site WebSocket hijacking) and a foreign `Host` (a DNS
//! rebinding page whose name now points at 127.0.0.1) are refused with 403
//! and a body saying what was refused and why. Requests without an `Origin`
//! come from non-browser clients, which no web page can drive, and pass.
//!
//! ```
//! use voxguard::dev::origin::ServedAddresses;
//! let served = ServedAddresses::for_bound("127.0.0.1:8089".parse().unwrap());
//! assert!(served.check_host("localhost:8089").is_ok());
//! assert!(served.check_origin("https://evil.example").is_err());
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The `scheme://host:port` forms under which this server is reached.
#[derive(Debug, Clone)]
pub struct ServedAddresses {
    port: u16,
    /// Lower-case host names and IP literals (IPv6 in brackets).
    hosts: Vec<String>,
    /// How the server names itself in refusals: its bound address.
    primary: String,
}

/// A request the dev server will not serve, with the reason for its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl ServedAddresses {
    /// The addresses a listener bound to `bound` serves: the bound address
    /// itself, `127.0.0.1`, `localhost` and `[::1]` on its port, and every
    /// interface address when bound to all of them (`0.0.0.0` or `[::]`).
    pub fn for_bound(bound: SocketAddr) -> ServedAddresses {
        let mut ips = vec![
            bound.ip(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        if bound.ip().is_unspecified()
            && let Ok(interfaces) = if_addrs::get_if_addrs()
        {
            ips.extend(interfaces.into_iter().map(|i| i.ip()));
        }
        let mut hosts: Vec<String> = Vec::new();
        for host in ips
            .into_iter()
            .filter(|ip| !ip.is_unspecified())
            .map(host_literal)
            .chain(["localhost".to_owned()])
        {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        let primary = if bound.ip().is_unspecified() {
            format!("http://127.0.0.1:{}", bound.port())
        } else {
            format!("http://{}:{}", host_literal(bound.ip()), bound.port())
        };
        ServedAddresses {
            port: bound.port(),
            hosts,
            primary,
        }
    }

    /// Accepts a `Host` header (or HTTP/2 authority) naming this server.
    pub fn check_host(&self, host: &str) -> Result<(), Refusal> {
        if self.names_this_server(host, 80) {
            return Ok(());
        }
        Err(Refusal(format!(
            "host {host} is not this dev server ({}); it answers only as {}. \
             A page whose name resolves to this machine (DNS rebinding) must not \
             reach the dev page, so the request was refused.",
            self.primary,
            self.listing()
        )))
    }

    /// Accepts an `Origin` header of a page this server served.
    pub fn check_origin(&self, origin: &str) -> Result<(), Refusal> {
        let same_site = origin
            .strip_prefix("http://")
            .is_some_and(|authority| self.names_this_server(authority, 80));
        if same_site {
            return Ok(());
        }
        Err(Refusal(format!(
            "origin {origin} is not this dev server ({}); only its own page ({}) may \
             open a call or change faults here, so a page from another site cannot \
             talk to the agent as you.",
            self.primary,
            self.listing()
        )))
    }

    fn names_this_server(&self, authority: &str, default_port: u16) -> bool {
        let Some((host, port)) = split_authority(authority, default_port) else {
            return false;
        };
        port == self.port && self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn listing(&self) -> String {
        self.hosts
            .iter()
            .map(|host| format!("http://{host}:{}", self.port))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `host[:port]` → (host, port); IPv6 literals keep their brackets.
fn split_authority(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    let host_end = if authority.starts_with('[') {
        authority.find(']')? + 1
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    let port = match rest {
        "" => default_port,
        _ => rest.strip_prefix(':')?.parse().ok()?,
    };
    Some((host, port))
}

/// Middleware: refuse any request whose `Host` is not this server, or that
/// carries an `Origin` that is not this server's page.
pub async fn only_this_server(
    State(served): State<ServedAddresses>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| header_text(&request, header::HOST));
    let checked = match host {
        Some(host) => served.check_host(&host),
        None => Err(Refusal(format!(
            "a request without a Host header cannot be told apart from a DNS-rebinding \
             page; send Host: {}",
            served.primary.trim_start_matches("http://")
        ))),
    }
    .and_then(|()| match header_text(&request, header::ORIGIN) {
        Some(origin) => served.check_origin(&origin),
        None => Ok(()),
    });
    match checked {
        Ok(()) => next.run(request).await,
        Err(Refusal(why)) => {
            tracing::warn!(reason = %why, "dev server refused a request");
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                Body::from(why),
            )
                .into_response()
        }
    }
}

fn header_text(request: &Request, name: header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_8089() -> ServedAddresses {
        ServedAddresses::for_bound("127.0.0.1:8089".parse().unwrap())
    }

    #[test]
    fn loopback_names_on_the_bound_port_are_this_server() {
        let served = loopback_8089();
        for host in [
            "127.0.0.1:8089",
            "localhost:8089",
            "LocalHost:8089",
            "[::1]:8089",
        ] {
            assert_eq!(served.check_host(host), Ok(()), "{host}");
        }
    }

    #[test]
    fn another_name_or_port_is_refused_and_the_refusal_says_why() {
        let served = loopback_8089();
        for host in [
            "attacker.example:8089",
            "127.0.0.1:8090",
            "127.0.0.1",
            "localhost.attacker.example:8089",
            "127.0.0.1:8089@evil",
            "",
        ] {
            let Err(Refusal(why)) = served.check_host(host) else {
                panic!("{host} accepted");
            };
            assert!(
                why.contains("is not this dev server (http://127.0.0.1:8089)"),
                "{why}"
            );
        }
    }

    #[test]
    fn only_the_plain_http_origin_of_this_server_is_accepted() {
        let served = loopback_8089();
        assert_eq!(served.check_origin("http://localhost:8089"), Ok(()));
        assert_eq!(served.check_origin("http://[::1]:8089"), Ok(()));
        for origin in [
            "https://evil.example",
            "null",
            "https://127.0.0.1:8089",
            "http://127.0.0.1:9999",
            "http://127.0.0.1",
        ] {
            let Err(Refusal(why)) = served.check_origin(origin) else {
                panic!("{origin} accepted");
            };
            assert!(why.starts_with(&format!("origin {origin} is not")), "{why}");
        }
    }

    #[test]
    fn port_80_may_be_left_out() {
        let served = ServedAddresses::for_bound("127.0.0.1:80".parse().unwrap());
        assert_eq!(served.check_host("localhost"), Ok(()));
        assert_eq!(served.check_origin("http://127.0.0.1"), Ok(()));
    }

    #[test]
    fn a_server_on_every_interface_answers_as_its_interface_addresses() {
        let served = ServedAddresses::for_bound("0.0.0.0:8089".parse().unwrap());
        assert_eq!(served.check_host("127.0.0.1:8089"), Ok(()));
        assert!(served.check_host("0.0.0.0:8089").is_err());
        assert!(served.check_host("attacker.example:8089").is_err());
    }
}
