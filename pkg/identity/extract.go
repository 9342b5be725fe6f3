package identity

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/valyala/fastjson"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// blockedValues are placeholders SDKs and apps send when they have no real
// identifier; linking on them would merge everyone who sent them.
var blockedValues = map[string]bool{
	"": true, "null": true, "nil": true, "none": true, "undefined": true, "anonymous": true, "unknown": true,
	"0": true, "-1": true, "n/a": true, "na": true, "guest": true, "[object object]": true, "nan": true, "false": true, "true": true,
}

// Blocked reports whether a value must never act as an identifier.
func Blocked(value string) bool { return blockedValues[strings.ToLower(strings.TrimSpace(value))] }

// priority orders identifier types from most to least trusted; the profile of
// the most trusted known identifier survives a merge.
func priority(t string) int {
	switch t {
	case "user_id":
		return 0
	case "email":
		return 1
	case "phone":
		return 2
	case "anonymous_id":
		return 9
	case "previous_id":
		return 8
	}
	return 5 // external ids
}

// Identifiers lists the identifiers an event carries, most trusted first,
// without blocked values or repeats: userId, anonymousId, an alias's
// previousId, email and phone from traits (identify) or context.traits, and
// context.externalIds.
func Identifiers(ev *eventv1.Event) []Identifier {
	var ids []Identifier
	seen := map[Identifier]bool{}
	add := func(t, v string) {
		id := Identifier{t, v}
		if Blocked(v) || seen[id] {
			return
		}
		seen[id] = true
		ids = append(ids, id)
	}
	add("user_id", ev.UserId)
	add("anonymous_id", ev.AnonymousId)
	if ev.Type == eventv1.EventType_EVENT_TYPE_ALIAS {
		add("previous_id", ev.PreviousId)
	}
	traitDocs := [][]byte{contextTraits(ev.ContextJson)}
	if ev.Type == eventv1.EventType_EVENT_TYPE_IDENTIFY {
		traitDocs = append(traitDocs, ev.TraitsJson)
	}
	for _, doc := range traitDocs {
		if v, err := fastjson.ParseBytes(doc); err == nil {
			add("email", string(v.GetStringBytes("email")))
			add("phone", string(v.GetStringBytes("phone")))
		}
	}
	for _, x := range ev.GetContext().GetExternalIds() {
		add(strings.ToLower(x.Type), x.Id)
	}
	sort.SliceStable(ids, func(i, j int) bool { return priority(ids[i].Type) < priority(ids[j].Type) })
	return ids
}

func contextTraits(ctx []byte) []byte {
	v, err := fastjson.ParseBytes(ctx)
	if err != nil {
		return nil
	}
	if t := v.Get("traits"); t != nil && t.Type() == fastjson.TypeObject {
		return t.MarshalTo(nil)
	}
	return nil
}

// Traits returns the traits an event sets on its profile (identify traits,
// else context.traits), each as its JSON text.
func Traits(ev *eventv1.Event) map[string]json.RawMessage {
	doc := ev.TraitsJson
	if ev.Type != eventv1.EventType_EVENT_TYPE_IDENTIFY || len(doc) == 0 {
		doc = contextTraits(ev.ContextJson)
	}
	v, err := fastjson.ParseBytes(doc)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil
	}
	out := map[string]json.RawMessage{}
	v.GetObject().Visit(func(k []byte, val *fastjson.Value) {
		out[string(k)] = json.RawMessage(val.MarshalTo(nil))
	})
	return out
}

// Counter names the per-profile counter an event increments.
func Counter(ev *eventv1.Event) string {
	switch ev.Type {
	case eventv1.EventType_EVENT_TYPE_TRACK:
		return "track:" + ev.Event
	case eventv1.EventType_EVENT_TYPE_IDENTIFY:
		return "identify"
	case eventv1.EventType_EVENT_TYPE_PAGE:
		return "page"
	case eventv1.EventType_EVENT_TYPE_SCREEN:
		return "screen"
	case eventv1.EventType_EVENT_TYPE_GROUP:
		return "group"
	case eventv1.EventType_EVENT_TYPE_ALIAS:
		return "alias"
	}
	return ""
}
