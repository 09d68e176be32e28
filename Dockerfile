# syntax=docker/dockerfile:1.7
# voxguard as a LiveKit agent worker: build once, run as a small non-root image.
#
#   docker build -t voxguard .
#   docker run --rm -e LIVEKIT_URL -e LIVEKIT_API_KEY -e LIVEKIT_API_SECRET -p 8081:8081 voxguard

FROM rust:1-bookworm AS build
WORKDIR /src
# Everything the build reads: the manifest and lock, the benches it
# declares, the files src/ embeds (config/voxguard.toml, prompts/phrases.toml)
# and the sources. tests/container_build_context.rs checks this list.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY cli ./cli
COPY config ./config
COPY prompts ./prompts
COPY src ./src
# Cache the registry and the target dir between builds; copy the binary out
# of the cache mount so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin voxguard \
    && cp target/release/voxguard /usr/local/bin/voxguard

FROM debian:bookworm-slim AS runtime
# ca-certificates for wss:// to LiveKit Cloud and https:// to the CRMs;
# libopus0 (the Opus codec, loaded at run time) and espeak-ng (the local
# voice, which needs no key) for calls that hear and speak.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libopus0 espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin voxguard \
    && mkdir -p /var/cache/voxguard/phrases && chown 10001:10001 /var/cache/voxguard/phrases
# Rendered recovery lines survive restarts when this is a volume.
ENV VOXGUARD_PHRASE_CACHE=/var/cache/voxguard/phrases
VOLUME /var/cache/voxguard/phrases
COPY --from=build /usr/local/bin/voxguard /usr/local/bin/voxguard
USER 10001:10001
# Health server: /health/live, /health/ready, /worker, /metrics.
EXPOSE 8081
# SIGTERM starts a graceful drain; give `docker stop -t` more than drain_timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/voxguard"]
CMD ["start"]
