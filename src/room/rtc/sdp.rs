//! A read-only look at a remote session description before it reaches the
//! WebRTC stack: which media sections it has, their codecs, `msid` and
//! SSRCs, and whether the peer is ICE-lite. The checks here turn a
//! malformed description, one without audio or one without Opus into a
//! typed error that says what is wrong.

use std::collections::HashMap;

/// Descriptions are a few KiB; a room with hundreds of tracks stays far
/// below this.
pub const MAX_SDP: usize = 256 * 1024;
/// Most media sections accepted in one description.
pub const MAX_SECTIONS: usize = 256;

/// What kind of media a section carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Audio,
    Video,
    Application,
    Other,
}

/// One `m=` section of a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    /// Port 0: the section is rejected or stopped.
    pub rejected: bool,
    pub mid: String,
    /// `a=msid:<stream id> <track id>`.
    pub msid: Option<(String, String)>,
    /// Every SSRC named by `a=ssrc` lines (main and retransmission).
    pub ssrcs: Vec<u32>,
    /// Payload type → codec name (lower case), from `a=rtpmap`.
    pub codecs: Vec<(u8, String)>,
    /// `sendrecv`, `sendonly`, `recvonly` or `inactive` as written.
    pub direction: Option<String>,
}

impl Section {
    /// The payload type of Opus in this section, if offered.
    pub fn opus_pt(&self) -> Option<u8> {
        self.codecs
            .iter()
            .find(|(_, name)| name == "opus")
            .map(|(pt, _)| *pt)
    }

    /// Whether the remote peer sends on this section.
    pub fn remote_sends(&self) -> bool {
        matches!(
            self.direction.as_deref(),
            Some("sendrecv" | "sendonly") | None
        )
    }
}

/// The parts of a description the transport checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub ice_lite: bool,
    pub sections: Vec<Section>,
}

/// Why a description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("session description of {len} bytes exceeds {max}; it cannot be a LiveKit offer")]
    TooLarge { len: usize, max: usize },
    #[error("not a session description: it must start with \"v=0\"")]
    NotSdp,
    #[error("malformed media line {line:?}: expected \"m=<media> <port> <proto> <formats>\"")]
    BadMediaLine { line: String },
    #[error("more than {max} media sections")]
    TooManySections { max: usize },
    #[error("media section {index} has no a=mid; BUNDLE needs one per section")]
    MissingMid { index: usize },
    #[error("the description has neither an audio section nor a data channel")]
    NoAudio,
    #[error(
        "audio section {mid:?} does not offer Opus (offered: {offered}); only Opus is supported"
    )]
    NoOpus { mid: String, offered: String },
    #[error("the WebRTC stack refused the description: {0}")]
    Refused(String),
}

/// Reads `sdp` into a [`Summary`]. Tolerates unknown lines; refuses what
/// cannot be a session description.
pub fn summarize(sdp: &str) -> Result<Summary, SdpError> {
    if sdp.len() > MAX_SDP {
        return Err(SdpError::TooLarge {
            len: sdp.len(),
            max: MAX_SDP,
        });
    }
    if !sdp.trim_start().starts_with("v=0") {
        return Err(SdpError::NotSdp);
    }
    let mut summary = Summary::default();
    for raw in sdp.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(media) = line.strip_prefix("m=") {
            if summary.sections.len() >= MAX_SECTIONS {
                return Err(SdpError::TooManySections { max: MAX_SECTIONS });
            }
            summary.sections.push(media_line(media, line)?);
            continue;
        }
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        let Some(section) = summary.sections.last_mut() else {
            if attribute == "ice-lite" {
                summary.ice_lite = true;
            }
            continue;
        };
        let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
        match name {
            "mid" => section.mid = value.trim().to_owned(),
            "msid" => {
                let mut parts = value.split_whitespace();
                if let (Some(stream), Some(track)) = (parts.next(), parts.next()) {
                    section.msid = Some((stream.to_owned(), track.to_owned()));
                }
            }
            "ssrc" => {
                let id = value.split_whitespace().next().and_then(|s| s.parse().ok());
                if let Some(id) = id
                    && !section.ssrcs.contains(&id)
                    && section.ssrcs.len() < 64
                {
                    section.ssrcs.push(id);
                }
            }
            "rtpmap" => {
                let mut parts = value.split_whitespace();
                let pt = parts.next().and_then(|s| s.parse::<u8>().ok());
                let codec = parts.next().and_then(|s| s.split('/').next());
                if let (Some(pt), Some(codec)) = (pt, codec)
                    && section.codecs.len() < 128
                {
                    section.codecs.push((pt, codec.to_ascii_lowercase()));
                }
            }
            "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
                section.direction = Some(name.to_owned());
            }
            _ => {}
        }
    }
    for (index, section) in summary.sections.iter().enumerate() {
        if section.mid.is_empty() && !section.rejected {
            return Err(SdpError::MissingMid { index });
        }
    }
    Ok(summary)
}

fn media_line(media: &str, line: &str) -> Result<Section, SdpError> {
    let bad = || SdpError::BadMediaLine {
        line: line.chars().take(80).collect(),
    };
    let mut parts = media.split_whitespace();
    let kind = match parts.next().ok_or_else(bad)? {
        "audio" => SectionKind::Audio,
        "video" => SectionKind::Video,
        "application" => SectionKind::Application,
        _ => SectionKind::Other,
    };
    let port: u16 = parts
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(bad)?;
    parts.next().ok_or_else(bad)?;
    Ok(Section {
        kind,
        rejected: port == 0,
        mid: String::new(),
        msid: None,
        ssrcs: Vec::new(),
        codecs: Vec::new(),
        direction: None,
    })
}

impl Summary {
    /// Sections still in use.
    pub fn active(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| !s.rejected)
    }

    pub fn section(&self, mid: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.mid == mid)
    }

    /// A LiveKit description carries audio or a data channel, and every
    /// audio section in use offers Opus.
    pub fn check_audio(&self) -> Result<(), SdpError> {
        let mut usable = false;
        for section in self.active() {
            match section.kind {
                SectionKind::Audio => {
                    if section.opus_pt().is_none() {
                        let offered: Vec<&str> =
                            section.codecs.iter().map(|(_, n)| n.as_str()).collect();
                        return Err(SdpError::NoOpus {
                            mid: section.mid.clone(),
                            offered: if offered.is_empty() {
                                "nothing".to_owned()
                            } else {
                                offered.join(", ")
                            },
                        });
                    }
                    usable = true;
                }
                SectionKind::Application => usable = true,
                SectionKind::Video | SectionKind::Other => {}
            }
        }
        if usable {
            Ok(())
        } else {
            Err(SdpError::NoAudio)
        }
    }

    /// SSRCs the remote declared, by mid, for sections it sends on.
    pub fn remote_ssrcs(&self) -> HashMap<String, Vec<u32>> {
        self.active()
            .filter(|s| s.kind == SectionKind::Audio && s.remote_sends())
            .map(|s| (s.mid.clone(), s.ssrcs.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=msid:PA_caller TR_mic\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
a=ssrc:1234 cname:x\r\na=ssrc:1234 msid:PA_caller TR_mic\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n";

    #[test]
    fn an_offer_is_read_into_sections_with_msid_ssrc_and_codecs() {
        let summary = summarize(OFFER).unwrap();
        assert!(summary.ice_lite);
        assert_eq!(summary.sections.len(), 2);
        let audio = &summary.sections[0];
        assert_eq!(audio.kind, SectionKind::Audio);
        assert_eq!(audio.mid, "0");
        assert_eq!(audio.msid, Some(("PA_caller".into(), "TR_mic".into())));
        assert_eq!(audio.ssrcs, vec![1234]);
        assert_eq!(audio.opus_pt(), Some(111));
        assert!(audio.remote_sends());
        assert_eq!(summary.sections[1].kind, SectionKind::Application);
        summary.check_audio().unwrap();
    }

    #[test]
    fn text_that_is_not_sdp_is_refused() {
        assert_eq!(summarize("hello"), Err(SdpError::NotSdp));
        assert!(matches!(
            summarize("v=0\r\nm=audio\r\n"),
            Err(SdpError::BadMediaLine { .. })
        ));
    }

    #[test]
    fn an_audio_section_without_opus_is_refused_naming_what_was_offered() {
        let sdp = OFFER.replace("a=rtpmap:111 opus/48000/2\r\n", "");
        assert_eq!(
            summarize(&sdp).unwrap().check_audio(),
            Err(SdpError::NoOpus {
                mid: "0".into(),
                offered: "pcmu".into()
            })
        );
    }

    #[test]
    fn a_video_only_offer_has_no_audio() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(
            summarize(sdp).unwrap().check_audio(),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn a_section_without_mid_is_refused() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(summarize(sdp), Err(SdpError::MissingMid { index: 0 }));
    }

    #[test]
    fn a_huge_description_is_refused_before_parsing() {
        let sdp = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP));
        assert!(matches!(summarize(&sdp), Err(SdpError::TooLarge { .. })));
    }
}
