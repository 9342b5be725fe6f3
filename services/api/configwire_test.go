package main

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/webhook"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

// maximalWorkspace sets every field of every type of the configuration
// (maximalTest checks that it does).
func maximalWorkspace() sources.Workspace {
	m := segments.Match{Event: "Order Completed", Type: "track", Where: `properties.category == "audio"`}
	day := segments.Duration(24 * time.Hour)
	return sources.Workspace{
		ID: "shop", Name: "Shop", Consent: consent.Policy{Required: []string{"analytics"}}, PIISecretEnv: "FP_SHOP_PII_SECRET",
		Sources: []sources.Source{{
			ID: "web", Name: "Website", WriteKeys: []string{"fpw_0123456789abcdef0123"}, AllowedOrigins: []string{"https://shop.example"},
			RateLimit: &sources.RateLimit{EventsPerSecond: 5000.5, Burst: 10000}, Disabled: true, DefaultRegion: "DE",
			PII:          []pii.Rule{{Path: "traits.email", Action: pii.Hash}},
			TrackingPlan: json.RawMessage(`{"events":{"Order Completed":{"properties":{"required":["order_id"],"type":"object"}}},"id":"shop-web","unplanned":"allow","version":1,"violations":"block"}`),
		}},
		Segments: []segments.Definition{{
			ID: "vip", Version: 3, Name: "VIP", Description: "Big spenders", Condition: "spend > 500.0 && orders > 2",
			Recheck: segments.Duration(time.Hour),
			Aggregates: map[string]segments.AggregateDef{
				"orders":  {Count: &segments.CountDef{Match: m, Within: 30 * day}},
				"spend":   {Sum: &segments.SumDef{Match: m, Property: "revenue", Within: 90 * day}},
				"first":   {FirstSeen: &segments.SeenDef{Match: m}},
				"last":    {LastSeen: &segments.SeenDef{Match: m}},
				"cart":    {Absence: &segments.AbsenceDef{After: "Product Added", AfterType: "track", Where: "properties.price > 1.0", Missing: "Order Completed", MissingType: "track", MissingWhere: "properties.total > 1.0", Within: segments.Duration(time.Hour)}},
				"dormant": {Inactive: &segments.InactiveDef{Match: m, Within: 30 * day}},
			},
		}},
		Destinations: []webhook.Destination{{
			ID: "crm", URL: "https://crm.example/hook", SecretEnv: "FP_CRM_SECRET", Segments: []string{"vip"}, Transitions: []string{"enter"},
			RateLimit: &webhook.RateLimit{PerSecond: 20.5, Burst: 40}, MaxAttempts: 5, Timeout: webhook.Duration(3 * time.Second),
		}},
		Identity: &sources.IdentitySettings{Limits: map[string]int{"email": 2}, DefaultLimit: 4, Priorities: []string{"user_id", "email"}, BlockedValues: []string{"test@example.com"}},
	}
}

// TestConfigWireRoundTrip: the configuration crosses between the Go
// structs and the API's messages without loss, both ways, for a value
// that sets every field of both — so a field added on one side only
// fails here.
func TestConfigWireRoundTrip(t *testing.T) {
	goValues := []any{
		controlplane.Document{Workspace: maximalWorkspace(), Version: 7, UpdatedAt: time.Date(2026, 11, 23, 9, 30, 0, 123456789, time.UTC), UpdatedBy: "api key of shop"},
		sources.Config{Workspaces: []sources.Workspace{maximalWorkspace()}},
		controlplane.ApplyReport{DryRun: true, Changes: []controlplane.Change{{Workspace: "shop", Action: "update", Changes: []string{"segments[vip]: changed"}}},
			Skipped: []controlplane.Skipped{{Workspace: "other", Reason: "this key belongs to workspace shop"}}, Written: map[string]int64{"shop": 8}},
	}
	messages := []proto.Message{&apiv1.Document{}, &apiv1.Config{}, &apiv1.ApplyReport{}}
	for i, v := range goValues {
		m := messages[i]
		name := reflect.TypeOf(v).String()
		goFieldsSet(t, name, v)
		if err := toProto(v, m); err != nil {
			t.Fatalf("%s to proto: %v", name, err)
		}
		protoFieldsSet(t, m)

		// Go → proto → Go.
		back := reflect.New(reflect.TypeOf(v))
		if err := fromProto(m, back.Interface()); err != nil {
			t.Fatalf("%s from proto: %v", name, err)
		}
		want, _ := json.Marshal(v)
		got, _ := json.Marshal(back.Elem().Interface())
		if string(got) != string(want) {
			t.Errorf("%s through proto:\n got %s\nwant %s", name, got, want)
		}
		// proto → Go → proto.
		again := m.ProtoReflect().New().Interface()
		if err := toProto(back.Elem().Interface(), again); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m, again) {
			t.Errorf("%T through Go:\n got %v\nwant %v", m, again, m)
		}
	}
}

// goFieldsSet fails unless every field of every struct type reachable
// from v is set somewhere in v.
func goFieldsSet(t *testing.T, name string, v any) {
	t.Helper()
	all, set := map[string]bool{}, map[string]bool{}
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				return // raw JSON
			}
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(v.MapIndex(k))
			}
		case reflect.Struct:
			if v.Type() == reflect.TypeOf(time.Time{}) {
				return
			}
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if !f.IsExported() {
					continue
				}
				id := v.Type().String() + "." + f.Name
				all[id] = true
				if !v.Field(i).IsZero() {
					set[id] = true
				}
				walk(v.Field(i))
			}
		}
	}
	// Every type is reached through a nil or empty value too, so types
	// only declared (a pointer left nil) still count.
	var declare func(reflect.Type, map[reflect.Type]bool)
	declare = func(tp reflect.Type, seen map[reflect.Type]bool) {
		for tp.Kind() == reflect.Pointer || tp.Kind() == reflect.Slice || tp.Kind() == reflect.Map {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || tp == reflect.TypeOf(time.Time{}) || seen[tp] {
			return
		}
		seen[tp] = true
		for i := range tp.NumField() {
			if f := tp.Field(i); f.IsExported() {
				all[tp.String()+"."+f.Name] = true
				declare(f.Type, seen)
			}
		}
	}
	declare(reflect.TypeOf(v), map[reflect.Type]bool{})
	walk(reflect.ValueOf(v))
	var unset []string
	for id := range all {
		if !set[id] {
			unset = append(unset, id)
		}
	}
	if len(unset) > 0 {
		slices.Sort(unset)
		t.Errorf("the maximal %s leaves fields unset (set them, and mirror new ones in config.proto): %s", name, strings.Join(unset, ", "))
	}
}

// protoFieldsSet fails unless every field of every message reachable from
// m (well-known types aside) is set somewhere in m.
func protoFieldsSet(t *testing.T, m proto.Message) {
	t.Helper()
	all, set := map[protoreflect.FullName]bool{}, map[protoreflect.FullName]bool{}
	var declare func(protoreflect.MessageDescriptor)
	declare = func(md protoreflect.MessageDescriptor) {
		if strings.HasPrefix(string(md.FullName()), "google.protobuf.") || all[md.FullName()] {
			return
		}
		all[md.FullName()] = true // marks the message visited
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			all[fd.FullName()] = true
			if fd.IsMap() {
				fd = fd.MapValue()
			}
			if fd.Message() != nil {
				declare(fd.Message())
			}
		}
	}
	var walk func(protoreflect.Message)
	walk = func(msg protoreflect.Message) {
		if strings.HasPrefix(string(msg.Descriptor().FullName()), "google.protobuf.") {
			return
		}
		set[msg.Descriptor().FullName()] = true
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			set[fd.FullName()] = true
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool { walk(e.Message()); return true })
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	declare(m.ProtoReflect().Descriptor())
	walk(m.ProtoReflect())
	var unset []string
	for id := range all {
		if !set[id] {
			unset = append(unset, string(id))
		}
	}
	if len(unset) > 0 {
		slices.Sort(unset)
		t.Errorf("%T converted from the maximal Go value leaves fields unset (a field of config.proto the Go structs lack?): %s", m, strings.Join(unset, ", "))
	}
}

// TestConfigFilesAsMessages: the configuration files in the repository
// (and the local stack's, when present) read through the API's Config
// message exactly as pkg/sources reads them, so POST /v1/config:apply
// takes them as they are.
func TestConfigFilesAsMessages(t *testing.T) {
	files := []string{"../../deploy/docker/sources.yaml", "../../.local/sources.yaml"}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) && strings.Contains(f, ".local") {
			t.Logf("%s: absent (make up writes it)", f)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want, err := sources.ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			t.Fatal(err)
		}
		var m apiv1.Config
		if err := protojson.Unmarshal(j, &m); err != nil {
			t.Fatalf("%s as a Config message: %v", f, err)
		}
		var got sources.Config
		if err := fromProto(&m, &got); err != nil {
			t.Fatalf("%s from the message: %v", f, err)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Errorf("%s through the message:\n got %s\nwant %s", f, a, b)
		}
	}
}
