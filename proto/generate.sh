#!/usr/bin/env bash
# Regenerates the Go code for every .proto under proto/ with the generators
# pinned in proto/go.mod (tool directives) and the system protoc.
# Usage: proto/generate.sh [OUT_DIR]   (default: proto/, in place)
# freshness_test.go runs it into a temporary directory and compares.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-.}
command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler libprotobuf-dev (or make deps)" >&2; exit 1; }
gen_go=$(go tool -n protoc-gen-go)
gen_grpc=$(go tool -n protoc-gen-go-grpc)
mapfile -t files < <(find . -name '*.proto' -not -path './testdata/*' | sed 's|^\./||' | sort)
mkdir -p "$out"
protoc -I . \
  --plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_grpc" \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  "${files[@]}"
