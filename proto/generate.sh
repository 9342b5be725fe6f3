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
# grpc-gateway: the admin API's REST face and its OpenAPI document, from the
# google.api.http options of api/v1 (third_party/ holds google/api; the
# openapiv2 options come with the grpc-gateway module).
gen_gw=$(go tool -n protoc-gen-grpc-gateway)
gen_oa=$(go tool -n protoc-gen-openapiv2)
gw_dir=$(go list -m -f '{{.Dir}}' github.com/grpc-ecosystem/grpc-gateway/v2)
mapfile -t files < <(find . -name '*.proto' -not -path './testdata/*' -not -path './third_party/*' | sed 's|^\./||' | sort)
mapfile -t api < <(printf '%s\n' "${files[@]}" | grep '^api/')
# The pipeline's messages (everything but the admin API) also get vtproto.
mapfile -t wire < <(printf '%s\n' "${files[@]}" | grep -v '^api/')
mkdir -p "$out"
protoc -I . -I third_party -I "$gw_dir" \
  --plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_grpc" \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  "${files[@]}"
protoc -I . \
  --plugin=protoc-gen-go-vtproto="$gen_vt" \
  --go-vtproto_out="$out" --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+unmarshal_unsafe+size \
  "${wire[@]}"
protoc -I . -I third_party -I "$gw_dir" \
  --plugin=protoc-gen-grpc-gateway="$gen_gw" --plugin=protoc-gen-openapiv2="$gen_oa" \
  --grpc-gateway_out="$out" --grpc-gateway_opt=paths=source_relative \
  --openapiv2_out="$out/api/v1" \
  --openapiv2_opt=allow_merge=true,merge_file_name=api,json_names_for_fields=false,disable_default_errors=true,output_format=json \
  "${api[@]}"
