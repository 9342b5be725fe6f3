package pii

import (
	"strings"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// mirror is a typed field of Event.Context that copies a context_json
// field, so a rule on the JSON path must reach it too.
type mirror struct {
	path   string // below context, as in a rule
	fields func(c *eventv1.Context) []*string
}

// mirrors lists the typed context fields that can carry personal data; the
// rest (library, os, screen, consent, …) describe software, not people.
var mirrors = []mirror{
	{"ip", func(c *eventv1.Context) []*string { return []*string{&c.Ip} }},
	{"userAgent", func(c *eventv1.Context) []*string { return []*string{&c.UserAgent} }},
	{"device.id", func(c *eventv1.Context) []*string {
		if c.Device == nil {
			return nil
		}
		return []*string{&c.Device.Id}
	}},
	{"device.advertisingId", func(c *eventv1.Context) []*string {
		if c.Device == nil {
			return nil
		}
		return []*string{&c.Device.AdvertisingId}
	}},
	{"page.url", func(c *eventv1.Context) []*string {
		return pageField(c, func(p *eventv1.Page) *string { return &p.Url })
	}},
	{"page.referrer", func(c *eventv1.Context) []*string {
		return pageField(c, func(p *eventv1.Page) *string { return &p.Referrer })
	}},
	{"page.search", func(c *eventv1.Context) []*string {
		return pageField(c, func(p *eventv1.Page) *string { return &p.Search })
	}},
	{"externalIds.id", func(c *eventv1.Context) []*string {
		var out []*string
		for _, id := range c.ExternalIds {
			if id != nil {
				out = append(out, &id.Id)
			}
		}
		return out
	}},
}

func pageField(c *eventv1.Context, f func(*eventv1.Page) *string) []*string {
	if c.Page == nil {
		return nil
	}
	return []*string{f(c.Page)}
}

// typed applies one rule (segs below "context") to the typed mirrors it
// names directly, through a wildcard or through their container.
func (a *applier) typed(c *eventv1.Context, segs []string, action Action) {
	if c == nil {
		return
	}
	for _, m := range mirrors {
		msegs := strings.Split(m.path, ".")
		if len(segs) > len(msegs) || !matches(segs, msegs) {
			continue
		}
		key := "typed\x00" + m.path
		if a.decided[key] {
			continue
		}
		a.decided[key] = true
		changed := false
		for _, f := range m.fields(c) {
			if *f == "" {
				continue
			}
			switch action {
			case Drop:
				*f, changed = "", true
			case Mask, Hash:
				if out, ch := a.scalar(*f, action); ch {
					*f, changed = out, true
				}
			}
		}
		if changed {
			a.report("context." + m.path)
		}
	}
}

// matches reports whether the rule segments match the first segments of a
// mirror's path.
func matches(rule, path []string) bool {
	for i, s := range rule {
		if s != "*" && s != path[i] {
			return false
		}
	}
	return true
}
