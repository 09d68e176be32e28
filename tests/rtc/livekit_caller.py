"""A caller built on LiveKit's official Python SDK (libwebrtc inside its
wheel): joins a room, publishes a microphone track from a WAV file, listens
to the agent's audio, reads its lk.transcription captions and lk.agent.state,
types one lk.chat message once the greeting is over, and prints what it
observed as one JSON object on stdout.

usage: livekit_caller.py URL TOKEN WAV CHAT_TEXT
       livekit_caller.py URL TOKEN WAV --speak-only
(speak-only: publish the WAV once and report when each 10 ms frame was
captured, in CLOCK_MONOTONIC seconds, then leave)
"""

import asyncio
import json
import math
import sys
import time
import wave

from livekit import rtc

FRAME_MS = 10
AUDIBLE_DBFS = -45.0


def level_dbfs(data: memoryview) -> float:
    samples = memoryview(data).cast("B").cast("h")
    if len(samples) == 0:
        return -120.0
    energy = sum(s * s for s in samples) / len(samples)
    rms = math.sqrt(energy)
    return 20 * math.log10(max(rms / 32768.0, 1e-9))


async def speak_only(url: str, token: str, wav_path: str) -> dict:
    room = rtc.Room()
    await room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
    with wave.open(wav_path, "rb") as wav:
        rate = wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    # A short queue: capture times are send times, not queue entry times.
    source = rtc.AudioSource(rate, 1, queue_size_ms=20)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await room.local_participant.publish_track(track, options)
    await asyncio.sleep(1.0)
    per_frame = rate * FRAME_MS // 1000
    captured = []
    for offset in range(0, len(pcm) // 2 - per_frame, per_frame):
        chunk = pcm[offset * 2 : (offset + per_frame) * 2]
        await source.capture_frame(rtc.AudioFrame(chunk, rate, 1, per_frame))
        captured.append(time.clock_gettime(time.CLOCK_MONOTONIC))
    await asyncio.sleep(2.0)
    await room.disconnect()
    return {"connected": True, "rate": rate, "frame_ms": FRAME_MS, "captured": captured}


async def main(url: str, token: str, wav_path: str, chat: str) -> dict:
    report = {
        "connected": False,
        "agent_identity": None,
        "agent_audio_frames": 0,
        "agent_audible_frames": 0,
        "captions": [],
        "states": [],
        "first_audible_ms": None,
        "answer_after_chat_ms": None,
        "errors": [],
    }
    room = rtc.Room()
    started = time.monotonic()
    chat_sent_at = None
    last_audible = [None]
    audio_tasks = []

    async def read_audio(track: rtc.RemoteAudioTrack) -> None:
        try:
            await listen(track)
        except Exception as error:
            report["errors"].append(f"reading the agent's audio: {error!r}")

    async def listen(track: rtc.RemoteAudioTrack) -> None:
        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        async for event in stream:
            report["agent_audio_frames"] += 1
            if level_dbfs(event.frame.data) > AUDIBLE_DBFS:
                now = time.monotonic()
                report["agent_audible_frames"] += 1
                last_audible[0] = now
                if report["first_audible_ms"] is None:
                    report["first_audible_ms"] = (now - started) * 1000
                if chat_sent_at is not None and report["answer_after_chat_ms"] is None:
                    report["answer_after_chat_ms"] = (now - chat_sent_at) * 1000

    @room.on("track_subscribed")
    def on_track(track, publication, participant):
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            report["agent_identity"] = participant.identity
            audio_tasks.append(asyncio.ensure_future(read_audio(track)))

    @room.on("participant_attributes_changed")
    def on_attributes(changed, participant):
        state = changed.get("lk.agent.state")
        if state is not None:
            report["states"].append(state)

    async def read_caption(reader, participant_identity):
        text = await reader.read_all()
        report["captions"].append(
            {
                "from": participant_identity,
                "text": text,
                "final": reader.info.attributes.get("lk.transcription_final"),
            }
        )

    def on_caption(reader, participant_identity):
        asyncio.ensure_future(read_caption(reader, participant_identity))

    room.register_text_stream_handler("lk.transcription", on_caption)

    await room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
    report["connected"] = True

    # The microphone: the WAV, in real time.
    with wave.open(wav_path, "rb") as wav:
        rate = wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    source = rtc.AudioSource(rate, 1)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await room.local_participant.publish_track(track, options)
    per_frame = rate * FRAME_MS // 1000
    for offset in range(0, len(pcm) // 2 - per_frame, per_frame):
        chunk = pcm[offset * 2 : (offset + per_frame) * 2]
        frame = rtc.AudioFrame(chunk, rate, 1, per_frame)
        await source.capture_frame(frame)

    # The greeting: wait for audio, then a second of quiet with a caption in.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        quiet = last_audible[0] is not None and time.monotonic() - last_audible[0] > 1.0
        if quiet and report["captions"]:
            break
        await asyncio.sleep(0.05)

    chat_sent_at = time.monotonic()
    await room.local_participant.send_text(chat, topic="lk.chat")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and report["answer_after_chat_ms"] is None:
        await asyncio.sleep(0.05)
    # Let the answer's caption complete.
    await asyncio.sleep(3)

    for task in audio_tasks:
        task.cancel()
    await room.disconnect()
    return report


if __name__ == "__main__":
    url, token, wav_path, chat = sys.argv[1:5]
    try:
        if chat == "--speak-only":
            result = asyncio.run(speak_only(url, token, wav_path))
        else:
            result = asyncio.run(main(url, token, wav_path, chat))
    except Exception as error:  # the report says what failed
        result = {"connected": False, "errors": [repr(error)]}
    print(json.dumps(result), flush=True)
