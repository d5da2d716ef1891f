# keylens: one static binary (pure-Go SQLite, no cgo) on a distroless base.
#   docker build -t keylens .
#   docker run -p 3000:3000 -p 8181:8181 -v keylens-data:/data -e KEYLENS_HITS_SECRET=<secret> keylens
# (the sidecar listens on every address here, so POST /hits needs a secret)
#
# The Tyk Go plugin, compiled by Tyk's plugin compiler for the gateway that
# will load it (the version must match the gateway's exactly):
#   docker build --target plugin --build-arg TYK_VERSION=v5.8.1 --output type=local,dest=bin .
# writes bin/keylens-plugin_v5.8.1_linux_amd64.so.
ARG TYK_VERSION=v5.8.1

FROM tykio/tyk-plugin-compiler:${TYK_VERSION} AS plugin-build
# The compiler's /build.sh copies /plugin-source to
# $(dirname $TYK_GW_PATH)/plugin_keylens-plugin, beside the gateway source at
# $TYK_GW_PATH (/go/src/github.com/TykTechnologies/tyk), and builds it there
# in a go.work of ./tyk and that folder. The plugin's go.mod replaces
# identity with ../identity, so identity goes beside them. The result,
# keylens-plugin_<gateway version>_<os>_<arch>.so, lands in /plugin-source.
# The image has built the gateway binary from the gateway's own go.mod
# before this stage; the plugin's modules require nothing it links above
# the oldest supported release's versions (README, "Supported Tyk
# versions"), so the workspace selects the gateway's. tests/tykdouble/
# gateway/load_test.go builds and loads the plugin in this layout and
# order, once per supported release line.
COPY identity /go/src/github.com/TykTechnologies/identity
COPY plugin /plugin-source
RUN /build.sh keylens-plugin.so

FROM scratch AS plugin
COPY --from=plugin-build /plugin-source/*.so /

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY identity/go.mod identity/go.sum ./identity/
COPY third_party/fasthttp/go.mod third_party/fasthttp/go.sum ./third_party/fasthttp/
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/keylens ./cmd/keylens \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keylens /usr/local/bin/keylens
# The store directory belongs to the unprivileged user, so volumes mounted on it are writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV KEYLENS_STORE=sqlite:/data/keylens.db \
    KEYLENS_ADMIN_ADDR=0.0.0.0:3000 \
    KEYLENS_PORTAL_ADDR=0.0.0.0:3001 \
    KEYLENS_SIDECAR_ADDR=0.0.0.0:8181
VOLUME ["/data"]
EXPOSE 3000 3001 8181
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/keylens"]
CMD ["serve"]
