package main

import (
	"fmt"
	"reflect"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// fullEnvelope is a Segment track call with every field the events table
// flattens set to a distinct value.
func fullEnvelope(ws, id string) *eventv1.Envelope {
	return &eventv1.Envelope{
		SchemaVersion: 1, MessageId: id, WorkspaceId: ws, SourceId: "web",
		Collector: &eventv1.CollectorMeta{
			ReceivedAt: ts("2026-03-14T15:09:27.635Z"), SentAt: ts("2026-03-14T15:09:28.2Z"),
			Ip: "203.0.113.9", UserAgent: "collector-ua", RequestId: "req-42", Api: "http", Endpoint: "/v1/batch",
		},
		Raw: []byte(`{"type":"track"}`),
		Event: &eventv1.Event{
			Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: id,
			AnonymousId: "anon-1", UserId: "user-1", Event: "Order Completed", Name: "Checkout", Category: "Shop",
			GroupId: "grp-1", PreviousId: "prev-1",
			Timestamp:         ts("2026-03-14T15:09:26.535Z"),
			OriginalTimestamp: ts("2026-03-14T15:09:27.1Z"),
			SentAt:            ts("2026-03-14T15:09:28.2Z"),
			ReceivedAt:        ts("2026-03-14T15:09:27.635Z"),
			Context: &eventv1.Context{
				Ip: "198.51.100.7", UserAgent: "Mozilla/5.0 (X11)", Locale: "de-DE", Timezone: "Europe/Berlin",
				Library:  &eventv1.Library{Name: "analytics.js", Version: "5.2.1"},
				Page:     &eventv1.Page{Path: "/checkout", Referrer: "https://search.example/?q=shoes", Search: "?step=2", Title: "Checkout", Url: "https://shop.example/checkout?step=2"},
				Campaign: &eventv1.Campaign{Name: "spring", Source: "newsletter", Medium: "email", Term: "shoes", Content: "hero"},
				Device:   &eventv1.Device{Id: "dev-9", AdvertisingId: "ad-9", Manufacturer: "Apple", Model: "iPhone15,2", Name: "Ann's phone", Type: "ios"},
				Os:       &eventv1.OS{Name: "iOS", Version: "17.4"},
				App:      &eventv1.App{Name: "Shop", Version: "3.1.0", Build: "310", Namespace: "com.example.shop"},
				Screen:   &eventv1.Screen{Width: 1170, Height: 2532, Density: 3},
				GroupId:  "ctx-grp-1",
			},
			PropertiesJson:   []byte(`{"order_id":"o-1","revenue":99.5,"currency":"EUR"}`),
			TraitsJson:       []byte(`{"plan":"pro"}`),
			ContextJson:      []byte(`{"ip":"198.51.100.7","locale":"de-DE"}`),
			IntegrationsJson: []byte(`{"All":true}`),
		},
		Validation: &eventv1.Validation{PlanId: "shop", PlanVersion: 3, Violations: []*eventv1.Violation{
			{Reason: eventv1.Reason_REASON_SCHEMA_VIOLATION, Field: "/properties/coupon", Rule: "type", Detail: "not a string"},
			{Reason: eventv1.Reason_REASON_UNPLANNED, Detail: "unplanned property"},
		}},
		Resolution: &eventv1.Resolution{ProfileId: "prof-1", ResolvedAt: ts("2026-03-14T15:09:27.7Z")},
	}
}

// wantFullRow is fullEnvelope's events row, written out by hand.
func wantFullRow(ws, id, trace string) eventRow {
	return eventRow{
		WorkspaceID: ws, SourceID: "web", MessageID: id,
		Type: "track", Event: "Order Completed", Name: "Checkout", Category: "Shop",
		AnonymousID: "anon-1", UserID: "user-1", GroupID: "grp-1", PreviousID: "prev-1", ProfileID: "prof-1",
		Timestamp: utc("2026-03-14T15:09:26Z"), TimestampMs: 535,
		OriginalTimestamp: utc("2026-03-14T15:09:27Z"), OriginalTimestampMs: 100,
		SentAt: utc("2026-03-14T15:09:28Z"), SentAtMs: 200,
		ReceivedAt: utc("2026-03-14T15:09:27Z"), ReceivedAtMs: 635,
		ResolvedAt: utc("2026-03-14T15:09:27Z"), ResolvedAtMs: 700,
		ContextIP: "198.51.100.7", ContextUserAgent: "Mozilla/5.0 (X11)", ContextLocale: "de-DE", ContextTimezone: "Europe/Berlin",
		ContextGroupID: "ctx-grp-1", ContextLibraryName: "analytics.js", ContextLibraryVersion: "5.2.1",
		ContextPageURL: "https://shop.example/checkout?step=2", ContextPagePath: "/checkout",
		ContextPageReferrer: "https://search.example/?q=shoes", ContextPageTitle: "Checkout", ContextPageSearch: "?step=2",
		ContextCampaignName: "spring", ContextCampaignSource: "newsletter", ContextCampaignMedium: "email",
		ContextCampaignTerm: "shoes", ContextCampaignContent: "hero",
		ContextDeviceID: "dev-9", ContextDeviceAdvertisingID: "ad-9", ContextDeviceType: "ios",
		ContextDeviceManufacturer: "Apple", ContextDeviceModel: "iPhone15,2", ContextDeviceName: "Ann's phone",
		ContextOSName: "iOS", ContextOSVersion: "17.4",
		ContextAppName: "Shop", ContextAppVersion: "3.1.0", ContextAppBuild: "310", ContextAppNamespace: "com.example.shop",
		ContextScreenWidth: 1170, ContextScreenHeight: 2532, ContextScreenDensity: 3,
		Properties:   `{"order_id":"o-1","revenue":99.5,"currency":"EUR"}`,
		Traits:       `{"plan":"pro"}`,
		Context:      `{"ip":"198.51.100.7","locale":"de-DE"}`,
		Integrations: `{"All":true}`,
		PlanID:       "shop", PlanVersion: 3, Violations: 2,
		RequestID: "req-42", TraceID: trace,
		Version: uint64(utc("2026-03-14T15:09:27Z").UnixMilli() + 700),
	}
}

// diffFields compares two rows of one struct type field by field (times by
// instant) and names every column that differs; skip lists columns not to
// compare.
func diffFields(want, got any, skip ...string) []string {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var diffs []string
	for i := range wv.NumField() {
		col := wv.Type().Field(i).Tag.Get("ch")
		if skipped[col] {
			continue
		}
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if wt, ok := w.(time.Time); ok {
			if !wt.Equal(g.(time.Time)) {
				diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", col, g, w))
			}
			continue
		}
		if !reflect.DeepEqual(w, g) {
			diffs = append(diffs, fmt.Sprintf("%s = %#v, want %#v", col, g, w))
		}
	}
	return diffs
}

func tsAt(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
