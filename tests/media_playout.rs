//! Paced playout with time passed in: one frame per 20 ms from an absolute
//! start, segments that grow while they play, cut, pause and resume.

use std::time::{Duration, Instant};

use voxguard::media::playout::{
    Heard, Playout, PlayoutConfig, PlayoutError, PlayoutEvent, SegmentId,
};

const FRAME: Duration = Duration::from_millis(20);

/// Samples that say where they are: segment `id`'s sample i is id*1000+i%1000.
fn ramp(id: SegmentId, from: usize, len: usize) -> Vec<i16> {
    (from..from + len)
        .map(|i| (id as usize * 1_000 + i % 1_000) as i16)
        .collect()
}

fn events(playout: &mut Playout) -> Vec<PlayoutEvent> {
    std::iter::from_fn(|| playout.pop_event()).collect()
}

/// Play `n` frames on schedule; returns each frame's segment and samples.
fn play(
    playout: &mut Playout,
    start: Instant,
    from: u32,
    n: u32,
) -> Vec<(Option<SegmentId>, Vec<i16>)> {
    (from..from + n)
        .map(|k| {
            let frame = playout
                .next_frame(start + FRAME * k)
                .expect("a frame is due");
            (frame.segment, frame.samples.to_vec())
        })
        .collect()
}

#[test]
fn an_hour_of_frames_keeps_to_the_clock_whatever_the_callers_timing() {
    let mut playout = Playout::new(PlayoutConfig::default());
    let start = Instant::now();
    let mut seed = 1u32;
    // The clock starts at the first call.
    assert!(playout.next_frame(start).is_some());
    let mut frames = 1u64;
    let mut now = start;
    let hour = Duration::from_secs(3_600);
    while now < start + hour {
        // The driver wakes 0-15 ms late, sometimes early.
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let wake = playout.next_due().unwrap_or(start)
            + Duration::from_micros(u64::from(seed >> 16) % 15_000);
        now = wake;
        while let Some(frame) = playout.next_frame(now) {
            assert_eq!(frame.due, start + FRAME * frames as u32);
            assert!(
                frame.samples.iter().all(|&s| s == 0),
                "idle playout is silence"
            );
            frames += 1;
        }
    }
    let expected = (now - start).as_nanos() / FRAME.as_nanos() + 1;
    assert_eq!(u128::from(frames), expected);
    assert_eq!(playout.stats().clock_skips, 0);
}

#[test]
fn a_frame_is_not_given_before_it_is_due_and_a_stalled_caller_skips_ahead() {
    let mut playout = Playout::new(PlayoutConfig::default());
    let start = Instant::now();
    assert!(playout.next_frame(start).is_some());
    assert!(
        playout
            .next_frame(start + Duration::from_millis(19))
            .is_none()
    );
    assert!(playout.next_frame(start + FRAME).is_some());
    // A one-second stall: no burst of 50 frames.
    let late = start + Duration::from_millis(1_050);
    let burst = std::iter::from_fn(|| playout.next_frame(late).map(|_| ())).count();
    assert_eq!(burst, 1);
    assert_eq!(playout.stats().clock_skips, 1);
    assert_eq!(playout.next_due(), Some(start + FRAME * 53));
}

#[test]
fn segments_play_back_to_back_and_report_start_and_finish() {
    let mut playout = Playout::new(PlayoutConfig::default());
    playout.push_segment(1, &ramp(1, 0, 1_440)).unwrap();
    playout.push_segment(2, &ramp(2, 0, 1_440)).unwrap();
    let start = Instant::now();
    let frames = play(&mut playout, start, 0, 4);
    assert_eq!(frames[0].0, Some(1));
    // The second frame ends segment 1 and starts segment 2.
    assert_eq!(frames[1].1[..480], ramp(1, 960, 480)[..]);
    assert_eq!(frames[1].1[480..], ramp(2, 0, 480)[..]);
    assert_eq!(frames[2].1, ramp(2, 480, 960));
    assert_eq!(frames[3], (None, vec![0; 960]));
    assert_eq!(
        events(&mut playout),
        [
            PlayoutEvent::Started { id: 1 },
            PlayoutEvent::Finished {
                id: 1,
                samples: 1_440
            },
            PlayoutEvent::Started { id: 2 },
            PlayoutEvent::Finished {
                id: 2,
                samples: 1_440
            },
        ]
    );
    assert!(!playout.is_speaking());
}

#[test]
fn a_segment_that_runs_dry_while_streaming_is_an_underrun_and_then_continues_in_order() {
    let mut playout = Playout::new(PlayoutConfig::default());
    let start = Instant::now();
    playout.start_segment(7).unwrap();
    playout.append(7, &ramp(7, 0, 1_920)).unwrap();
    let frames = play(&mut playout, start, 0, 4);
    assert_eq!(frames[1].1, ramp(7, 960, 960));
    assert_eq!(frames[2], (None, vec![0; 960]));
    assert_eq!(frames[3], (None, vec![0; 960]));
    playout.append(7, &ramp(7, 1_920, 1_000)).unwrap();
    playout.finish_segment(7).unwrap();
    let frames = play(&mut playout, start, 4, 2);
    assert_eq!(frames[0].1, ramp(7, 1_920, 960));
    assert_eq!(frames[1].1[..40], ramp(7, 2_880, 40)[..]);
    assert!(frames[1].1[40..].iter().all(|&s| s == 0));
    let stats = playout.stats();
    assert_eq!((stats.underruns, stats.underrun_frames), (1, 2));
    assert_eq!(
        events(&mut playout),
        [
            PlayoutEvent::Started { id: 7 },
            PlayoutEvent::Underrun { id: 7 },
            PlayoutEvent::Finished {
                id: 7,
                samples: 2_920
            },
        ]
    );
}

#[test]
fn cut_stops_at_once_and_says_how_much_of_each_segment_was_heard() {
    let mut playout = Playout::new(PlayoutConfig::default());
    playout.push_segment(1, &ramp(1, 0, 48_000)).unwrap();
    playout.start_segment(2).unwrap();
    playout.append(2, &ramp(2, 0, 4_800)).unwrap();
    let start = Instant::now();
    play(&mut playout, start, 0, 10);
    let heard = playout.cut().to_vec();
    assert_eq!(
        heard,
        [
            Heard {
                id: 1,
                played_samples: 9_600,
                unplayed_samples: 38_400
            },
            Heard {
                id: 2,
                played_samples: 0,
                unplayed_samples: 4_800
            },
        ]
    );
    assert_eq!(play(&mut playout, start, 10, 1)[0], (None, vec![0; 960]));
    assert_eq!(
        playout.append(2, &[1]),
        Err(PlayoutError::UnknownSegment(2))
    );
}

#[test]
fn a_paused_sentence_resumes_at_the_sample_where_it_stopped() {
    let mut playout = Playout::new(PlayoutConfig::default());
    playout.push_segment(3, &ramp(3, 0, 9_600)).unwrap();
    let start = Instant::now();
    play(&mut playout, start, 0, 2);
    playout.pause();
    let paused = play(&mut playout, start, 2, 5);
    assert!(paused.iter().all(|f| *f == (None, vec![0; 960])));
    playout.resume();
    let resumed = play(&mut playout, start, 7, 1);
    assert_eq!(resumed[0], (Some(3), ramp(3, 1_920, 960)));
}

#[test]
fn queue_misuse_is_a_typed_error() {
    let config = PlayoutConfig {
        max_buffered: Duration::from_millis(100),
        ..PlayoutConfig::default()
    };
    let mut playout = Playout::new(config);
    playout.push_segment(1, &[0; 960]).unwrap();
    assert_eq!(playout.start_segment(1), Err(PlayoutError::DuplicateId(1)));
    assert_eq!(playout.append(1, &[0]), Err(PlayoutError::SegmentClosed(1)));
    assert_eq!(
        playout.finish_segment(9),
        Err(PlayoutError::UnknownSegment(9))
    );
    assert_eq!(
        playout.push_segment(2, &[0; 4_800]),
        Err(PlayoutError::Full { held_ms: 20 })
    );
    // The refused segment is not left behind half-made.
    assert_eq!(
        playout.append(2, &[0]),
        Err(PlayoutError::UnknownSegment(2))
    );
}
