package apiv1

import _ "embed"

// OpenAPI is the OpenAPI (Swagger 2.0) document of the admin API's REST
// face, generated from these protos (generate.sh, protoc-gen-openapiv2).
//
//go:embed api.swagger.json
var OpenAPI []byte
