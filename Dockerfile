# ec2d's container image: a release build of the binary on a distroless base (glibc, CA
# certificates, nothing else). Run it with the host's Docker socket mounted; see
# docker-compose.yml and README ("Run in a container").
#
# The base images are build arguments so that a machine without a registry can substitute
# local ones (tests/support/build-ec2d-image.sh does).
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first, in a layer of their own, so a source change recompiles ec2d only.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin ec2d \
    && rm -rf src
COPY src src
# cargo compares modification times: make sure the real sources are newer than the stubs.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin ec2d \
    && cp target/release/ec2d /ec2d

FROM ${RUNTIME_IMAGE}
COPY --from=build /ec2d /usr/local/bin/ec2d
# Every address of the container (publish the port to choose who reaches it); the store on a
# volume so instances, images and key pairs outlive the container.
ENV EC2D_LISTEN=0.0.0.0:4566 \
    EC2D_DATA_DIR=/var/lib/ec2d
EXPOSE 4566
VOLUME /var/lib/ec2d
HEALTHCHECK --interval=5s --timeout=6s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/ec2d", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ec2d"]
CMD ["serve"]
