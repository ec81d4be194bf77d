# Build: docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) -t cmu-exporter .
# Run:   docker run -p 9063:9063 -v /etc/cmu-exporter:/etc/cmu-exporter:ro \
#          -v cmu-state:/var/lib/cmu-exporter cmu-exporter --config.file /etc/cmu-exporter/config.yaml
FROM rust:1-bookworm AS build
ARG REVISION=unknown
ENV CMU_EXPORTER_REVISION=${REVISION}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin cmu-exporter && strip target/release/cmu-exporter

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 65532 --home-dir /var/lib/cmu-exporter --create-home cmu-exporter
COPY --from=build /src/target/release/cmu-exporter /usr/local/bin/cmu-exporter
USER 65532
EXPOSE 9063
ENTRYPOINT ["/usr/local/bin/cmu-exporter"]
