package segmentapi

import (
	"strconv"

	"github.com/valyala/fastjson"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// parseContext types the common fields of Segment's context object. It is
// lenient on purpose: the whole object is kept in context_json, so a field of
// an unexpected type is left out of the typed form rather than costing the
// event. Numbers are accepted where SDKs disagree (app.build, device.id).
func parseContext(ctx *fastjson.Value) *eventv1.Context {
	if ctx == nil || ctx.Type() != fastjson.TypeObject {
		return nil
	}
	c := &eventv1.Context{
		Ip:        text(ctx, "ip"),
		UserAgent: text(ctx, "userAgent"),
		Locale:    text(ctx, "locale"),
		Timezone:  text(ctx, "timezone"),
		GroupId:   text(ctx, "groupId"),
	}
	if v := object(ctx, "library"); v != nil {
		c.Library = &eventv1.Library{Name: text(v, "name"), Version: text(v, "version")}
	}
	if v := object(ctx, "page"); v != nil {
		c.Page = &eventv1.Page{Path: text(v, "path"), Referrer: text(v, "referrer"), Search: text(v, "search"), Title: text(v, "title"), Url: text(v, "url")}
	}
	if v := object(ctx, "campaign"); v != nil {
		c.Campaign = &eventv1.Campaign{Name: text(v, "name"), Source: text(v, "source"), Medium: text(v, "medium"), Term: text(v, "term"), Content: text(v, "content")}
	}
	if v := object(ctx, "device"); v != nil {
		c.Device = &eventv1.Device{Id: text(v, "id"), AdvertisingId: text(v, "advertisingId"), Manufacturer: text(v, "manufacturer"), Model: text(v, "model"), Name: text(v, "name"), Type: text(v, "type")}
	}
	if v := object(ctx, "os"); v != nil {
		c.Os = &eventv1.OS{Name: text(v, "name"), Version: text(v, "version")}
	}
	if v := object(ctx, "app"); v != nil {
		c.App = &eventv1.App{Name: text(v, "name"), Version: text(v, "version"), Build: text(v, "build"), Namespace: text(v, "namespace")}
	}
	if v := object(ctx, "screen"); v != nil {
		c.Screen = &eventv1.Screen{Width: int32(num(v, "width")), Height: int32(num(v, "height")), Density: num(v, "density")}
	}
	if consent := object(ctx, "consent"); consent != nil {
		if prefs := object(consent, "categoryPreferences"); prefs != nil {
			c.Consent = map[string]bool{}
			prefs.GetObject().Visit(func(k []byte, v *fastjson.Value) {
				switch v.Type() {
				case fastjson.TypeTrue:
					c.Consent[string(k)] = true
				case fastjson.TypeFalse:
					c.Consent[string(k)] = false
				}
			})
		}
	}
	for _, v := range ctx.GetArray("externalIds") {
		if v.Type() != fastjson.TypeObject {
			continue
		}
		id := &eventv1.ExternalID{Id: text(v, "id"), Type: text(v, "type"), Collection: text(v, "collection"), Encoding: text(v, "encoding")}
		if id.Id != "" && id.Type != "" {
			c.ExternalIds = append(c.ExternalIds, id)
		}
	}
	return c
}

func object(v *fastjson.Value, key string) *fastjson.Value {
	f := v.Get(key)
	if f == nil || f.Type() != fastjson.TypeObject {
		return nil
	}
	return f
}

// text returns a string field, or a number's JSON text; "" otherwise.
func text(v *fastjson.Value, key string) string {
	f := v.Get(key)
	if f == nil {
		return ""
	}
	switch f.Type() {
	case fastjson.TypeString:
		return string(f.GetStringBytes())
	case fastjson.TypeNumber:
		return string(f.MarshalTo(nil))
	}
	return ""
}

// num returns a number field (or a numeric string); 0 otherwise.
func num(v *fastjson.Value, key string) float64 {
	f := v.Get(key)
	if f == nil {
		return 0
	}
	switch f.Type() {
	case fastjson.TypeNumber:
		return f.GetFloat64()
	case fastjson.TypeString:
		n, _ := strconv.ParseFloat(string(f.GetStringBytes()), 64)
		return n
	}
	return 0
}
