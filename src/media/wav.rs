//! RIFF/WAVE in and out: 16-bit PCM, any sample rate, mixed down to mono on
//! read. Local voices (espeak-ng) and some TTS servers answer with WAV; tests
//! and `simulate` write what a caller heard as WAV.
//!
//! Streams written by a program to a pipe carry a placeholder size
//! (`0xFFFF_FFFF` or 0) in the RIFF and data headers; the reader then takes
//! the data chunk to the end of the input.

/// Decoded PCM: mono s16 at `sample_rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl Pcm {
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.samples.len() as f64 / self.sample_rate as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a WAV file: it does not start with RIFF....WAVE")]
    NotWav,
    #[error("WAV header is cut short ({0} bytes)")]
    Truncated(usize),
    #[error("WAV has no `fmt ` chunk before its data")]
    NoFormat,
    #[error("WAV has no `data` chunk")]
    NoData,
    #[error("WAV format {format} with {bits} bits per sample is not 16-bit PCM")]
    Unsupported { format: u16, bits: u16 },
    #[error("WAV declares {channels} channels at {sample_rate} Hz")]
    BadLayout { channels: u16, sample_rate: u32 },
}

/// How many bytes a header (RIFF + fmt + data headers) can take before the
/// samples start; the size of what [`parse_header`] needs to see.
pub const MAX_HEADER: usize = 4096;

/// What a WAV header says about the samples that follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    pub sample_rate: u32,
    pub channels: u16,
    /// Offset of the first sample byte.
    pub data_offset: usize,
    /// Bytes of sample data, when the header states it (not a streamed WAV).
    pub data_len: Option<usize>,
}

/// Read the header at the start of `bytes`; `Truncated` when more bytes are
/// needed (a streaming reader waits for them).
pub fn parse_header(bytes: &[u8]) -> Result<WavHeader, WavError> {
    if bytes.len() < 12 {
        return Err(WavError::Truncated(bytes.len()));
    }
    if &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32)> = None;
    loop {
        if at + 8 > bytes.len() {
            return Err(if at >= MAX_HEADER {
                WavError::NoData
            } else {
                WavError::Truncated(bytes.len())
            });
        }
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let body = at + 8;
        match id {
            b"fmt " => {
                if body + 16 > bytes.len() {
                    return Err(WavError::Truncated(bytes.len()));
                }
                let word = |i: usize| u16::from_le_bytes([bytes[body + i], bytes[body + i + 1]]);
                let mut tag = word(0);
                let channels = word(2);
                let sample_rate = u32::from_le_bytes([
                    bytes[body + 4],
                    bytes[body + 5],
                    bytes[body + 6],
                    bytes[body + 7],
                ]);
                let bits = word(14);
                // WAVE_FORMAT_EXTENSIBLE carries the real tag in its sub-format.
                if tag == 0xFFFE && size >= 26 && body + 26 <= bytes.len() {
                    tag = word(24);
                }
                if tag != 1 || bits != 16 {
                    return Err(WavError::Unsupported { format: tag, bits });
                }
                if channels == 0 || channels > 8 || !(1_000..=384_000).contains(&sample_rate) {
                    return Err(WavError::BadLayout {
                        channels,
                        sample_rate,
                    });
                }
                format = Some((channels, bits, sample_rate));
            }
            b"data" => {
                let (channels, _, sample_rate) = format.ok_or(WavError::NoFormat)?;
                let data_len = match size {
                    0 | 0xFFFF_FFFF => None,
                    n => Some(n as usize),
                };
                return Ok(WavHeader {
                    sample_rate,
                    channels,
                    data_offset: body,
                    data_len,
                });
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        let skip = (size as usize).saturating_add(size as usize & 1);
        at = body.saturating_add(skip);
        if at > MAX_HEADER {
            return Err(WavError::NoData);
        }
    }
}

/// Decode a whole WAV file. A data chunk longer than the input (a file cut
/// short) yields the samples that are there.
pub fn parse(bytes: &[u8]) -> Result<Pcm, WavError> {
    let header = parse_header(bytes)?;
    let end = match header.data_len {
        Some(len) => header.data_offset.saturating_add(len).min(bytes.len()),
        None => bytes.len(),
    };
    let data = &bytes[header.data_offset.min(end)..end];
    let mut samples = Vec::with_capacity(data.len() / 2 / usize::from(header.channels));
    push_mono(data, header.channels, &mut samples);
    Ok(Pcm {
        sample_rate: header.sample_rate,
        samples,
    })
}

/// Append little-endian s16 `data` interleaved over `channels` to `out` as
/// mono (the channels averaged). A trailing partial sample frame is ignored.
pub fn push_mono(data: &[u8], channels: u16, out: &mut Vec<i16>) {
    let step = 2 * usize::from(channels.max(1));
    for frame in data.chunks_exact(step) {
        let sum: i32 = frame
            .chunks_exact(2)
            .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]])))
            .sum();
        out.push((sum / i32::from(channels.max(1))) as i16);
    }
}

/// Encode mono s16 samples as a WAV file.
pub fn write(sample_rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_wav_reads_back_the_same_samples() {
        let samples: Vec<i16> = (0..500).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        let pcm = parse(&write(22_050, &samples)).unwrap();
        assert_eq!(pcm.sample_rate, 22_050);
        assert_eq!(pcm.samples, samples);
    }

    #[test]
    fn stereo_is_mixed_down_to_mono() {
        let mut bytes = write(16_000, &[]);
        bytes[22] = 2; // channels
        for (l, r) in [(100i16, 300i16), (-50, 50)] {
            bytes.extend_from_slice(&l.to_le_bytes());
            bytes.extend_from_slice(&r.to_le_bytes());
        }
        // A streamed WAV: the data size is unknown.
        bytes[40..44].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        assert_eq!(parse(&bytes).unwrap().samples, vec![200, 0]);
    }

    #[test]
    fn a_file_cut_short_keeps_what_is_there() {
        let bytes = write(8_000, &[1, 2, 3, 4]);
        let pcm = parse(&bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(pcm.samples, vec![1, 2]);
    }

    #[test]
    fn non_pcm_and_garbage_are_refused_with_a_reason() {
        assert_eq!(parse(b"hello"), Err(WavError::Truncated(5)));
        assert_eq!(parse(b"RIFF\0\0\0\0AVI LIST"), Err(WavError::NotWav));
        let mut float = write(16_000, &[0]);
        float[20] = 3; // IEEE float
        float[34] = 32;
        assert_eq!(
            parse(&float),
            Err(WavError::Unsupported {
                format: 3,
                bits: 32
            })
        );
        let mut no_rate = write(16_000, &[0]);
        no_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(parse(&no_rate), Err(WavError::BadLayout { .. })));
    }
}
