//! WAV bytes from a voice or a file through `wav::parse` and the streaming
//! `parse_header`: typed errors only, and the samples found never exceed
//! what the input could hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use voxguard::media::wav;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = wav::parse_header(data) {
        assert!(header.data_offset <= wav::MAX_HEADER + 8);
        assert!(header.channels >= 1);
    }
    if let Ok(pcm) = wav::parse(data) {
        assert!(pcm.samples.len() * 2 <= data.len());
    }
});
