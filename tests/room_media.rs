//! A room with media against the LiveKit stand-in, over real UDP on
//! 127.0.0.1: the agent and a caller both join with WebRTC, negotiate the
//! way LiveKit clients do (the server offers the subscriber connection, the
//! participant publishes after AddTrack/TrackPublished, candidates trickle),
//! and then hear each other's Opus and read each other's text streams.

#[path = "media_support.rs"]
mod media_support;

use std::time::Duration;

use voxguard::media::level::envelope_correlation;
use voxguard::media::opus::{Decoder, EncoderConfig};
use voxguard::media::packetize;
use voxguard::room::data::{
    LiveTextStream, TOPIC_CHAT, TOPIC_TRANSCRIPTION, TextStreamOptions, text_stream,
    transcription_attributes,
};
use voxguard::room::rtc::Loopback;
use voxguard::room::{MediaOptions, RoomConnection, RoomOptions};
use voxguard::testbed::livekit::{LoopbackConfig, LoopbackHandle, LoopbackServer};

const FRAME: Duration = Duration::from_millis(20);
const PATIENCE: Duration = Duration::from_secs(10);

fn media() -> RoomOptions {
    RoomOptions::with_media(MediaOptions {
        loopback: Loopback::Include,
        ..MediaOptions::default()
    })
}

async fn server(config: LoopbackConfig) -> LoopbackHandle {
    LoopbackServer::start_with(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("stand-in starts")
}

async fn join(server: &LoopbackHandle, room: &str, identity: &str, agent: bool) -> RoomConnection {
    let token = server
        .participant_token(room, identity, agent)
        .expect("token");
    let connection = RoomConnection::connect_with(&server.url(), &token, &media())
        .await
        .expect("joins with media");
    assert!(
        connection.audio_published(PATIENCE).await,
        "{identity}'s audio track was never negotiated"
    );
    connection
}

/// `text` spoken by espeak-ng at 48 kHz, and as 20 ms Opus packets.
fn speech(text: &str) -> (Vec<i16>, Vec<bytes::Bytes>) {
    let samples = media_support::speech_48k(text);
    let packets = packetize(EncoderConfig::default(), 48_000, &samples).expect("encodes");
    (samples, packets)
}

/// Sends `packets` paced at 20 ms.
async fn play(room: &RoomConnection, packets: &[bytes::Bytes]) -> usize {
    let mut tick = tokio::time::interval(FRAME);
    let mut sent = 0;
    for packet in packets {
        tick.tick().await;
        sent += usize::from(room.send_audio(packet, FRAME));
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_and_caller_hear_each_other_and_read_each_others_text() {
    media_support::system_deps();
    let server = server(LoopbackConfig::default()).await;
    let agent = join(&server, "call-1", "agent-1", true).await;
    let caller = join(&server, "call-1", "caller-1", false).await;
    let mut agent_in = agent.take_inbound().expect("agent media");
    let mut caller_in = caller.take_inbound().expect("caller media");

    // The caller speaks: the agent receives its packets, named by identity,
    // and they decode back to speech.
    let (said, spoken) = speech("Hello, I would like to book a demo.");
    let caller_sender = {
        let caller = caller.clone();
        let spoken = spoken.clone();
        tokio::spawn(async move { play(&caller, &spoken).await })
    };
    let mut heard = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while heard.len() < spoken.len() * 9 / 10 {
        match tokio::time::timeout_at(deadline, agent_in.audio.recv()).await {
            Ok(Some(audio)) => {
                assert_eq!(audio.participant, "caller-1");
                assert!(audio.track_sid.starts_with("TR_"), "{}", audio.track_sid);
                heard.push(audio.packet.payload);
            }
            _ => break,
        }
    }
    let sent = caller_sender.await.unwrap();
    assert!(
        sent >= spoken.len() - 2,
        "the caller sent {sent} of {}",
        spoken.len()
    );
    assert!(
        heard.len() >= spoken.len() * 9 / 10,
        "the agent heard {} of {} packets",
        heard.len(),
        spoken.len()
    );
    let mut decoder = Decoder::new().expect("decoder");
    let mut pcm = Vec::new();
    let mut frame = vec![0i16; 5760];
    for payload in &heard {
        let n = decoder
            .decode(payload, &mut frame)
            .expect("the agent receives valid Opus");
        pcm.extend_from_slice(&frame[..n]);
    }
    let likeness = envelope_correlation(&said, &pcm, 48_000);
    assert!(
        likeness > 0.8,
        "what the agent heard follows what the caller said: correlation {likeness:.2}"
    );

    // The agent answers out loud: the caller hears it from the agent.
    let (_, answer) = speech("Sure, what is your email?");
    let agent_sender = {
        let agent = agent.clone();
        let answer = answer.clone();
        tokio::spawn(async move { play(&agent, &answer).await })
    };
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while received < answer.len() * 9 / 10 {
        match tokio::time::timeout_at(deadline, caller_in.audio.recv()).await {
            Ok(Some(audio)) => {
                assert_eq!(audio.participant, "agent-1");
                received += 1;
            }
            _ => break,
        }
    }
    agent_sender.await.unwrap();
    assert!(
        received >= answer.len() * 9 / 10,
        "the caller heard {received} of {} packets",
        answer.len()
    );

    // The caller types (lk.chat as a text stream): the agent reads it.
    let options = TextStreamOptions::new(TOPIC_CHAT);
    let packets: Vec<_> = text_stream(
        "caller-1",
        "my email is chloe@northwind.example",
        &options,
        "s-1".into(),
        0,
    )
    .collect();
    assert!(
        caller.send_data(&packets).await,
        "the caller's chat went out"
    );
    let chat = tokio::time::timeout(PATIENCE, agent_in.texts.recv())
        .await
        .expect("chat arrives")
        .expect("agent texts open");
    assert_eq!(chat.topic, TOPIC_CHAT);
    assert_eq!(chat.sender, "caller-1", "the server stamps the sender");
    assert_eq!(chat.text, "my email is chloe@northwind.example");

    // The agent captions as it speaks (a live stream): the caller reads
    // the whole text with the final attribute from the trailer.
    let track = agent.audio_track_sid().expect("agent track sid");
    let options = TextStreamOptions {
        attributes: transcription_attributes("SG_1", &track, false),
        ..TextStreamOptions::new(TOPIC_TRANSCRIPTION)
    };
    let (mut stream, header) = LiveTextStream::open("agent-1", &options, "s-2".into(), 0);
    assert!(agent.send_data(&[header]).await);
    assert!(agent.send_data(&stream.append("Sure, ")).await);
    assert!(agent.send_data(&stream.append("what is your email?")).await);
    let trailer = stream.close(transcription_attributes("SG_1", &track, true));
    assert!(agent.send_data(&[trailer]).await);
    let caption = tokio::time::timeout(PATIENCE, caller_in.texts.recv())
        .await
        .expect("caption arrives")
        .expect("caller texts open");
    assert_eq!(caption.topic, TOPIC_TRANSCRIPTION);
    assert_eq!(caption.sender, "agent-1");
    assert_eq!(caption.text, "Sure, what is your email?");
    assert_eq!(caption.attributes["lk.transcription_final"], "true");
    assert_eq!(caption.attributes["lk.transcribed_track_id"], track);

    caller.leave().await;
    agent.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_only_connection_ignores_the_servers_offer_and_stays_in_the_room() {
    let server = server(LoopbackConfig::default()).await;
    let token = server.participant_token("call-2", "agent-2", true).unwrap();
    let agent = RoomConnection::connect(&server.url(), &token)
        .await
        .unwrap();
    assert!(!agent.has_media());
    assert!(agent.take_inbound().is_none());
    assert!(!agent.send_audio(&[0xf8, 0xff, 0xfe], FRAME));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let caller_token = server
        .participant_token("call-2", "caller-2", false)
        .unwrap();
    let caller = RoomConnection::connect(&server.url(), &caller_token)
        .await
        .unwrap();
    let mut events = agent.events();
    caller.leave().await;
    let left = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(voxguard::room::RoomEvent::ParticipantLeft { identity, .. }) => break identity,
                Ok(_) => continue,
                Err(error) => panic!("room events ended: {error}"),
            }
        }
    })
    .await
    .expect("the agent sees the caller leave");
    assert_eq!(left, "caller-2");
    agent.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_closes_a_room_its_callers_left_and_tells_the_agent_why() {
    let departure = Duration::from_millis(600);
    let server = server(LoopbackConfig {
        departure_timeout: departure,
        empty_timeout: Duration::from_millis(600),
        ..LoopbackConfig::default()
    })
    .await;
    let token = |identity: &str, agent: bool| {
        server
            .participant_token("closing", identity, agent)
            .unwrap()
    };
    let agent = RoomConnection::connect(&server.url(), &token("agent-3", true))
        .await
        .unwrap();
    let mut events = agent.events();
    // An agent alone does not keep the room open, but a room no caller
    // came to yet waits for one: a caller who joins in time keeps it.
    let caller = RoomConnection::connect(&server.url(), &token("caller-3", false))
        .await
        .unwrap();
    tokio::time::sleep(departure * 2).await;
    assert!(
        server.records().rooms_closed.is_empty(),
        "a room with a caller in it stays open"
    );
    // The caller steps out and back within the departure timeout: open.
    caller.leave().await;
    tokio::time::sleep(departure / 3).await;
    let caller = RoomConnection::connect(&server.url(), &token("caller-3", false))
        .await
        .unwrap();
    tokio::time::sleep(departure * 2).await;
    assert!(
        server.records().rooms_closed.is_empty(),
        "a caller who came back within the departure timeout keeps the room"
    );
    caller.leave().await;
    let left = tokio::time::Instant::now();
    let (reason, room_closed) = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(voxguard::room::RoomEvent::Disconnected {
                    reason,
                    room_closed,
                }) => break (reason, room_closed),
                Ok(_) => continue,
                Err(error) => panic!("room events ended: {error}"),
            }
        }
    })
    .await
    .expect("the agent is told the room closed");
    let after = left.elapsed();
    assert!(room_closed, "{reason}");
    assert!(reason.contains("ROOM_CLOSED"), "{reason}");
    assert!(
        after >= departure && after < departure * 3,
        "closed {after:?} after the caller left (departure timeout {departure:?})"
    );
    assert_eq!(server.records().rooms_closed, vec!["closing".to_string()]);
}
