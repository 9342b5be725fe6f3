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
# vtprotobuf: generated (reflection-free) Marshal/Unmarshal/Size beside the
# standard code; the stages call UnmarshalVT/MarshalVT on their hot paths.
gen_vt=$(go tool -n protoc-gen-go-vtproto)
mapfile -t files < <(find . -name '*.proto' -not -path './testdata/*' | sed 's|^\./||' | sort)
mkdir -p "$out"
protoc -I . \
  --plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_grpc" --plugin=protoc-gen-go-vtproto="$gen_vt" \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  --go-vtproto_out="$out" --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+unmarshal_unsafe+size \
  "${files[@]}"
