# syntax=docker/dockerfile:1
# Aviso in a container: a static binary (CGO_ENABLED=0; SQLite is pure Go) on an empty image,
# run as an unprivileged user. The root filesystem can be read-only: the node writes only to
# /data (the SQLite store; unused with AVISO_DATABASE_URL).
#
#   docker build -t aviso .
#   docker run --read-only -p 8080:8080 -v aviso-data:/data aviso
#
# packaging/check-image.sh tests the binary this image holds the way the image runs it.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/aviso ./cmd/aviso \
 && mkdir -p /out/data \
 && echo 'aviso:x:65532:65532:aviso:/data:/sbin/nologin' > /out/passwd \
 && echo 'aviso:x:65532:' > /out/group

FROM scratch
# TLS roots for HTTPS endpoints; the user and group the node runs as.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/aviso /aviso
USER 65532:65532
ENV AVISO_ADDR=0.0.0.0:8080 \
    AVISO_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/aviso", "healthcheck"]
ENTRYPOINT ["/aviso"]
CMD ["serve"]
