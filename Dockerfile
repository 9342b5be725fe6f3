# syntax=docker/dockerfile:1
# One image per Firstparty service, built from the repository root:
#   docker build --build-arg SERVICE=collector -t firstparty/collector .
# docker-compose.yml builds all six (collector validator stitcher segmenter loader api).

FROM golang:1.26 AS build
ARG SERVICE
RUN test -n "$SERVICE" || { echo "set --build-arg SERVICE=<collector|validator|stitcher|segmenter|loader|api>" >&2; exit 1; }
WORKDIR /src
# Static binaries for a distroless image. The golang image pins
# GOTOOLCHAIN=local; auto lets go.work's exact "go 1.26.x" line fetch a newer
# patch release from the Go proxy if the image's is older.
ENV CGO_ENABLED=0 GOTOOLCHAIN=auto

# The readiness probe for Docker's HEALTHCHECK: the runtime image has no shell,
# curl or wget. Standard library only, built outside the workspace.
COPY <<'EOF' /probe/main.go
// Command healthcheck GETs a URL (default http://127.0.0.1:8080/readyz) and
// exits 0 only on a 2xx answer.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	url := "http://127.0.0.1:8080/readyz"
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, url, resp.Status)
		os.Exit(1)
	}
}
EOF
RUN --mount=type=cache,target=/root/.cache/go-build \
	cd /probe && GOWORK=off go build -trimpath -ldflags='-s -w' -o /out/healthcheck main.go

# The whole workspace (go.work uses pkg, proto, services/* and tools), minus
# local server data, binaries and history that only bloat the context.
COPY --exclude=.local --exclude=.git --exclude=bin --exclude=**/*.test . .
RUN --mount=type=cache,target=/go/pkg/mod \
	--mount=type=cache,target=/root/.cache/go-build \
	go build -trimpath -ldflags='-s -w' -o /out/app ./services/${SERVICE}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
COPY --from=build /out/healthcheck /healthcheck
USER nonroot:nonroot
ENTRYPOINT ["/app"]
