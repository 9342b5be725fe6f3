package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The configuration has two definitions: the Go structs the services
// build from (pkg/sources, pkg/segments, pkg/webhook, …; the YAML file and
// the config topic hold their JSON) and the messages of
// proto/api/v1/config.proto, the API's. They meet through JSON, strictly
// both ways: a field one side has and the other lacks is an error here,
// not a silent loss, and configwire_test.go round-trips a configuration
// that sets every field of every type.

// wireOut writes a message for the Go side: unpopulated fields are left
// out (an empty duration string is no duration, not a parse error).
var wireOut = protojson.MarshalOptions{UseProtoNames: true}

// fromProto fills v (a Go configuration struct) from m.
func fromProto(m proto.Message, v any) error {
	b, err := wireOut.Marshal(m)
	if err != nil {
		return err
	}
	// The proto3 JSON mapping writes 64-bit integers as strings; the Go
	// structs read numbers.
	var tree any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	// Re-encoding also makes the spacing canonical: protojson's varies on
	// purpose, and stored JSON (a tracking plan is kept raw) must not, or
	// every apply would see a change.
	b, err = json.Marshal(int64Numbers(m.ProtoReflect().Descriptor(), tree))
	if err != nil {
		return err
	}
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// int64Numbers turns the 64-bit integers of v (md's JSON, decoded with
// UseNumber) from strings back into numbers.
func int64Numbers(md protoreflect.MessageDescriptor, v any) any {
	obj, ok := v.(map[string]any)
	if !ok || strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return v
	}
	for name, x := range obj {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			continue
		}
		conv := func(fd protoreflect.FieldDescriptor, x any) any {
			switch fd.Kind() {
			case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
				protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
				if s, ok := x.(string); ok {
					return json.Number(s)
				}
			case protoreflect.MessageKind, protoreflect.GroupKind:
				return int64Numbers(fd.Message(), x)
			}
			return x
		}
		switch {
		case fd.IsMap():
			if m, ok := x.(map[string]any); ok {
				for k, e := range m {
					m[k] = conv(fd.MapValue(), e)
				}
			}
		case fd.IsList():
			if l, ok := x.([]any); ok {
				for i, e := range l {
					l[i] = conv(fd, e)
				}
			}
		default:
			obj[name] = conv(fd, x)
		}
	}
	return obj
}

// toProto fills m from v (a Go configuration struct).
func toProto(v any, m proto.Message) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(b, m); err != nil {
		return fmt.Errorf("%T as %T: %w", v, m, err)
	}
	return nil
}

// compactJSON is m as compact JSON (a tracking plan as pkg/trackingplan
// and the stored configuration take it).
func compactJSON(m proto.Message) (json.RawMessage, error) {
	b, err := wireOut.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
