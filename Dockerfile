# The cmu-exporter image: a release build, then only the binary on a
# distroless base (glibc and CA certificates; no shell, no package manager).
#
#   docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) \
#     --build-arg VERSION=0.1.0 -t cmu-exporter .
#   docker run -p 9063:9063 -v /etc/cmu-exporter:/etc/cmu-exporter:ro \
#     -v cmu-state:/var/lib/cmu-exporter cmu-exporter --config.file /etc/cmu-exporter/config.yaml
#
# scripts/check-image lints this file and builds the binary exactly as the
# build stage does, from the same context (.dockerignore).

FROM rust:1.95-bookworm AS build
ARG REVISION=unknown
ENV CMU_EXPORTER_REVISION=${REVISION}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin cmu-exporter && strip target/release/cmu-exporter
# The state directory, owned by the run-time user (the final stage has no shell to make it).
RUN mkdir -p /state

FROM gcr.io/distroless/cc-debian12:nonroot
ARG REVISION=unknown
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="cmu-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Adobe Pass Concurrency Monitoring Usage reports" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /src/target/release/cmu-exporter /usr/local/bin/cmu-exporter
COPY --from=build --chown=65532:65532 /state /var/lib/cmu-exporter
USER 65532:65532
VOLUME ["/var/lib/cmu-exporter"]
EXPOSE 9063
ENTRYPOINT ["/usr/local/bin/cmu-exporter"]
