//! Screening of incoming RTP before the WebRTC stack sees it. Under SRTP the
//! RTP header is in the clear, so a packet whose payload type was never
//! negotiated (anything but Opus) or whose SSRC no description declared is
//! dropped here with a typed reason. Reports are kept to one per distinct
//! reason, so a flood of junk costs a counter, not a flood of events.

use super::event::InputError;
use super::sdp::{SectionKind, Summary};

/// Distinct refusals reported per connection; the rest are only counted.
const MAX_REPORTED: usize = 16;

#[derive(Debug, Default)]
pub struct Screen {
    /// Opus payload types either side may send with.
    allowed_pts: Vec<u8>,
    /// SSRCs the remote declared; `None` when some sending section declared
    /// none (then the stack maps packets by their mid header extension).
    declared_ssrcs: Option<Vec<u32>>,
    reported: Vec<InputError>,
}

impl Screen {
    /// Learns what is expected from the remote's latest description.
    pub fn update(&mut self, remote: &Summary) {
        self.allowed_pts = remote
            .active()
            .filter(|s| s.kind == SectionKind::Audio)
            .filter_map(|s| s.opus_pt())
            .collect();
        let sending: Vec<Vec<u32>> = remote.remote_ssrcs().into_values().collect();
        self.declared_ssrcs = if sending.iter().all(|ssrcs| !ssrcs.is_empty()) {
            Some(sending.into_iter().flatten().collect())
        } else {
            None
        };
    }

    /// Passes everything that is not RTP (STUN, DTLS, RTCP); checks RTP.
    pub fn check(&self, datagram: &[u8]) -> Result<(), InputError> {
        if datagram.len() < 12 || !(128..192).contains(&datagram[0]) {
            return Ok(());
        }
        let pt = datagram[1] & 0x7f;
        if (64..96).contains(&pt) {
            return Ok(()); // RTCP
        }
        if !self.allowed_pts.contains(&pt) {
            return Err(InputError::UnexpectedPayloadType { pt });
        }
        let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
        match &self.declared_ssrcs {
            Some(declared) if !declared.contains(&ssrc) => Err(InputError::UnexpectedSsrc { ssrc }),
            _ => Ok(()),
        }
    }

    /// Whether `error` should be reported (the first of its kind and value,
    /// up to a bound).
    pub fn first_time(&mut self, error: &InputError) -> bool {
        if self.reported.len() >= MAX_REPORTED || self.reported.contains(error) {
            return false;
        }
        self.reported.push(error.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::sdp::summarize;
    use super::*;

    const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
a=rtpmap:111 opus/48000/2\r\na=ssrc:42 cname:x\r\n";

    fn rtp(pt: u8, ssrc: u32) -> Vec<u8> {
        let mut packet = vec![0x80, pt, 0, 1, 0, 0, 0, 0];
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet
    }

    fn screen(sdp: &str) -> Screen {
        let mut screen = Screen::default();
        screen.update(&summarize(sdp).unwrap());
        screen
    }

    #[test]
    fn declared_opus_passes_and_the_rest_is_refused_by_reason() {
        let screen = screen(OFFER);
        assert_eq!(screen.check(&rtp(111, 42)), Ok(()));
        assert_eq!(
            screen.check(&rtp(0, 42)),
            Err(InputError::UnexpectedPayloadType { pt: 0 })
        );
        assert_eq!(
            screen.check(&rtp(111, 7)),
            Err(InputError::UnexpectedSsrc { ssrc: 7 })
        );
    }

    #[test]
    fn rtcp_stun_and_dtls_are_not_screened() {
        let screen = screen(OFFER);
        assert_eq!(screen.check(&rtp(72, 1)), Ok(())); // sender report
        assert_eq!(screen.check(&[0, 1, 0, 0]), Ok(())); // STUN
        assert_eq!(screen.check(&[22, 254, 253]), Ok(())); // DTLS
    }

    #[test]
    fn without_declared_ssrcs_any_ssrc_passes() {
        let screen = screen(&OFFER.replace("a=ssrc:42 cname:x\r\n", ""));
        assert_eq!(screen.check(&rtp(111, 7)), Ok(()));
    }

    #[test]
    fn each_refusal_is_reported_once_and_reports_are_bounded() {
        let mut screen = Screen::default();
        let error = InputError::UnexpectedSsrc { ssrc: 1 };
        assert!(screen.first_time(&error));
        assert!(!screen.first_time(&error));
        let reported = (2..100)
            .filter(|ssrc| screen.first_time(&InputError::UnexpectedSsrc { ssrc: *ssrc }))
            .count();
        assert_eq!(reported, MAX_REPORTED - 1);
    }
}
