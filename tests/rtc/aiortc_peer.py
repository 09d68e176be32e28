"""The other side of the aiortc interop test: an aiortc peer driven over
stdin/stdout, one JSON object per line.

  offer mode:  prints {"type": "offer", "sdp": ...}, reads {"type": "answer", "sdp": ...}
  answer mode: reads {"type": "offer", "sdp": ...}, prints {"type": "answer", "sdp": ...}

Then it reports what happens: {"type": "connected"}, {"type": "channel", "label": ...},
{"type": "data", "label": ..., "text": ...} for each message, and
{"type": "audio", "frames": n, "pts": [...]} once `--frames` audio frames were
decoded. It sends a silence track (offer mode, sendrecv) and
"hello from aiortc on <label>" on every open channel. It exits when stdin closes.

Only 127.0.0.1 is gathered: this test talks to nothing but loopback.
"""

import argparse
import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

# aioice leaves loopback out of host candidates; this test needs exactly it.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def read_message(reader):
    line = await reader.readline()
    if not line:
        raise SystemExit(0)
    return json.loads(line)


def watch_channel(channel):
    def on_open():
        emit({"type": "channel", "label": channel.label})
        channel.send(f"hello from aiortc on {channel.label}")

    @channel.on("message")
    def on_message(message):
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        emit({"type": "data", "label": channel.label, "text": text})

    if channel.readyState == "open":
        on_open()
    else:
        channel.on("open", on_open)


async def consume(track, frames):
    pts = []
    while len(pts) < frames:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        pts.append(frame.pts)
    emit({"type": "audio", "frames": len(pts), "pts": pts, "rate": frame.sample_rate})


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["offer", "answer"])
    parser.add_argument("--frames", type=int, default=25)
    args = parser.parse_args()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    # No STUN server: aiortc's default would be a public one.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tasks = []

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            emit({"type": "connected"})
        elif pc.connectionState == "failed":
            emit({"type": "failed"})

    @pc.on("track")
    def on_track(track):
        if track.kind == "audio":
            tasks.append(asyncio.ensure_future(consume(track, args.frames)))

    @pc.on("datachannel")
    def on_datachannel(channel):
        watch_channel(channel)

    if args.mode == "offer":
        pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        watch_channel(pc.createDataChannel("_reliable"))
        await pc.setLocalDescription(await pc.createOffer())
        emit({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await read_message(reader)
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    else:
        offer = await read_message(reader)
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"type": "answer", "sdp": pc.localDescription.sdp})

    # Runs until the test closes stdin.
    while await reader.readline():
        pass
    for task in tasks:
        task.cancel()
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
