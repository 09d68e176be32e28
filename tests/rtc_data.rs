//! Properties of LiveKit text streams: any UTF-8 text survives writer →
//! wire bytes → reader whole, whatever its size and characters; arbitrary
//! bytes never panic the reader and never grow it past its limits.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use voxguard::room::data::{
    CHUNK_SIZE, ReaderLimits, StreamReader, TOPIC_TRANSCRIPTION, TextStreamOptions, encode_packet,
    text_stream, transcription_attributes,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_text_round_trips_through_writer_wire_and_reader(
        text in ".{0,300}",
        repeat in 1usize..200,
        sender in "[a-z]{1,12}",
    ) {
        // Repeating makes texts that span several chunks.
        let text = text.repeat(repeat);
        let mut options = TextStreamOptions::new(TOPIC_TRANSCRIPTION);
        options.attributes = transcription_attributes("SG_1", "TR_1", true);
        let mut reader = StreamReader::new(ReaderLimits::default());
        let now = Instant::now();
        let mut wire = Vec::new();
        let mut done = Vec::new();
        for packet in text_stream(&sender, &text, &options, "s".into(), 7) {
            encode_packet(&packet, &mut wire).unwrap();
            prop_assert!(wire.len() <= CHUNK_SIZE + 256);
            done.extend(reader.receive_bytes(&wire, now).unwrap());
        }
        prop_assert_eq!(done.len(), 1);
        prop_assert_eq!(&done[0].text, &text);
        prop_assert_eq!(&done[0].sender, &sender);
        prop_assert_eq!(&done[0].attributes, &options.attributes);
        prop_assert_eq!(reader.open_streams(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_memory_stays_within_the_limits(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..60),
    ) {
        let limits = ReaderLimits {
            open_per_sender: 2,
            open_total: 4,
            bytes_per_stream: 1024,
            idle_timeout: Duration::from_secs(1),
        };
        let mut reader = StreamReader::new(limits);
        let now = Instant::now();
        for message in &messages {
            let _ = reader.receive_bytes(message, now);
            prop_assert!(reader.open_streams() <= limits.open_total);
            prop_assert!(reader.buffered_bytes() <= limits.open_total * limits.bytes_per_stream);
        }
        reader.expire(now + Duration::from_secs(1));
        prop_assert_eq!(reader.open_streams(), 0);
    }

    #[test]
    fn valid_packets_interleaved_with_garbage_keep_the_reader_bounded(
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..20),
        texts in prop::collection::vec("[a-zé ]{0,40}", 1..10),
    ) {
        let limits = ReaderLimits { open_total: 3, ..ReaderLimits::default() };
        let mut reader = StreamReader::new(limits);
        let now = Instant::now();
        let options = TextStreamOptions::new("lk.chat");
        let mut wire = Vec::new();
        for (n, text) in texts.iter().enumerate() {
            let mut packets: Vec<_> = text_stream("caller", text, &options, format!("s{n}"), 0).collect();
            // Leave every other stream without its trailer.
            if !n.is_multiple_of(2) {
                packets.pop();
            }
            for (packet, junk) in packets.iter().zip(garbage.iter().cycle()) {
                encode_packet(packet, &mut wire).unwrap();
                let _ = reader.receive_bytes(&wire, now);
                let _ = reader.receive_bytes(junk, now);
                prop_assert!(reader.open_streams() <= 3);
            }
        }
    }
}
