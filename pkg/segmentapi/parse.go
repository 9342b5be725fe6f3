// Package segmentapi decodes Segment's HTTP Tracking API payloads into
// Firstparty events: the collector's pure core. It enforces Segment's limits,
// checks the Spec's common fields for type, fills in what Segment fills in
// (messageId, receivedAt, skew-corrected timestamp) and keeps every
// free-form object as the JSON text the SDK sent.
//
// It is the parser of outside input most exposed to hostile bytes, so it
// never panics, never recurses without a bound, and reports each problem
// with the event index and JSON pointer it concerns.
package segmentapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// Limits bound what one request may carry. The defaults are Segment's.
type Limits struct {
	MaxEventBytes  int // one event's JSON
	MaxBatchBytes  int // one batch request, decompressed
	MaxBatchEvents int // events in one batch
	MaxDepth       int // nesting of objects and arrays
}

// DefaultLimits are Segment's documented limits (32 KB per event, 500 KB and
// 2,500 events per batch) and a nesting depth no real SDK payload reaches.
func DefaultLimits() Limits {
	return Limits{MaxEventBytes: 32 << 10, MaxBatchBytes: 500 << 10, MaxBatchEvents: 2500, MaxDepth: 32}
}

// MaxBodyBytes is the most a request of call may carry.
func (l Limits) MaxBodyBytes(call Call) int {
	if call.IsBatch() {
		return l.MaxBatchBytes
	}
	return l.MaxEventBytes
}

// Call is the API call a request was made to, named after its path.
type Call string

const (
	CallTrack    Call = "track"
	CallIdentify Call = "identify"
	CallPage     Call = "page"
	CallScreen   Call = "screen"
	CallGroup    Call = "group"
	CallAlias    Call = "alias"
	CallBatch    Call = "batch"
	CallImport   Call = "import" // Segment's historical-import alias of batch
)

// Calls lists every supported call.
var Calls = []Call{CallTrack, CallIdentify, CallPage, CallScreen, CallGroup, CallAlias, CallBatch, CallImport}

// IsBatch reports whether the call carries a "batch" array.
func (c Call) IsBatch() bool { return c == CallBatch || c == CallImport }

var eventTypes = map[string]eventv1.EventType{
	"track":    eventv1.EventType_EVENT_TYPE_TRACK,
	"identify": eventv1.EventType_EVENT_TYPE_IDENTIFY,
	"page":     eventv1.EventType_EVENT_TYPE_PAGE,
	"screen":   eventv1.EventType_EVENT_TYPE_SCREEN,
	"group":    eventv1.EventType_EVENT_TYPE_GROUP,
	"alias":    eventv1.EventType_EVENT_TYPE_ALIAS,
}

// Message is one accepted event.
type Message struct {
	// Raw is the event's JSON as sent (for a batch element, re-encoded
	// without changing keys, order or number text).
	Raw   []byte
	Event *eventv1.Event
	// SentAt is the sentAt that applied to this event (its own, else the
	// batch's); zero when the SDK sent none.
	SentAt time.Time
}

// Key is the Kafka partition key: the device (anonymousId), else the user,
// so one device's events stay in order.
func (m *Message) Key() string {
	if m.Event.AnonymousId != "" {
		return m.Event.AnonymousId
	}
	return m.Event.UserId
}

// Request is a decoded request.
type Request struct {
	Messages []Message
	// WriteKey from the body ("writeKey"), for SDKs that do not use Basic auth.
	WriteKey string
}

var parsers fastjson.ParserPool

// Parse decodes body, sent to call and received at receivedAt. It returns
// every problem it finds (up to a bound), or the messages when there is none:
// a request is accepted whole or not at all, so a sender never has to guess
// which of its events landed. With errors, the Request still carries the
// body's writeKey when one could be read, so the caller can authenticate
// before it answers.
func Parse(call Call, body []byte, receivedAt time.Time, lim Limits) (Request, []*Error) {
	if len(body) > lim.MaxBodyBytes(call) {
		return Request{}, []*Error{tooLarge(-1, "request body is %d bytes; the limit for /v1/%s is %d bytes", len(body), call, lim.MaxBodyBytes(call))}
	}
	if !utf8.Valid(body) {
		return Request{}, []*Error{badRequest(CodeInvalidUTF8, -1, "", "request body is not valid UTF-8")}
	}
	if d := depth(body); d > lim.MaxDepth {
		return Request{}, []*Error{badRequest(CodeTooDeep, -1, "", "JSON nests %d levels deep; the limit is %d", d, lim.MaxDepth)}
	}
	p := parsers.Get()
	defer parsers.Put(p)
	root, err := p.ParseBytes(body)
	if err != nil {
		return Request{}, []*Error{badRequest(CodeInvalidJSON, -1, "", "malformed JSON: %v", err)}
	}
	obj, err := root.Object()
	if err != nil {
		return Request{}, []*Error{badRequest(CodeInvalidJSON, -1, "", "the body must be a JSON object, got %s", root.Type())}
	}
	if dup := duplicateKey(obj); dup != "" {
		return Request{}, []*Error{badRequest(CodeDuplicateKey, -1, "/"+dup, "key %q appears more than once", dup)}
	}
	var req Request
	var errs []*Error
	if req.WriteKey, err = optString(obj, "writeKey"); err != nil {
		errs = append(errs, badRequest(CodeInvalidField, -1, "/writeKey", "must be a string"))
	}
	keyOnly := Request{WriteKey: req.WriteKey} // returned with errors, for authentication

	if !call.IsBatch() {
		if len(errs) > 0 {
			return keyOnly, errs
		}
		m, e := parseEvent(root, eventTypes[string(call)], -1, receivedAt, time.Time{}, nil, lim)
		if e != nil {
			return keyOnly, e
		}
		req.Messages = []Message{m}
		return req, nil
	}

	batch := obj.Get("batch")
	if batch == nil {
		return keyOnly, append(errs, badRequest(CodeMissingField, -1, "/batch", "a batch request needs a \"batch\" array of events"))
	}
	items, err := batch.Array()
	if err != nil {
		return keyOnly, append(errs, badRequest(CodeInvalidField, -1, "/batch", "must be an array, got %s", batch.Type()))
	}
	if len(items) == 0 {
		return keyOnly, append(errs, badRequest(CodeEmptyBatch, -1, "/batch", "the batch has no events"))
	}
	if len(items) > lim.MaxBatchEvents {
		return keyOnly, []*Error{tooLarge(-1, "the batch has %d events; the limit is %d", len(items), lim.MaxBatchEvents)}
	}
	batchSentAt, e := optTime(obj, "sentAt", -1)
	if e != nil {
		errs = append(errs, e)
	}
	batchContext := obj.Get("context")
	if batchContext != nil && batchContext.Type() != fastjson.TypeObject && batchContext.Type() != fastjson.TypeNull {
		errs = append(errs, badRequest(CodeInvalidField, -1, "/context", "must be an object, got %s", batchContext.Type()))
		batchContext = nil
	}
	req.Messages = make([]Message, 0, len(items))
	for i, item := range items {
		typ := item.GetStringBytes("type")
		et, ok := eventTypes[string(typ)]
		if !ok {
			if item.Get("type") == nil {
				errs = append(errs, badRequest(CodeMissingField, i, "/type", "every batch event needs a type: track, identify, page, screen, group or alias"))
			} else {
				errs = append(errs, badRequest(CodeUnknownType, i, "/type", "%s is not track, identify, page, screen, group or alias", item.Get("type")))
			}
			continue
		}
		m, e := parseEvent(item, et, i, receivedAt, batchSentAt, batchContext, lim)
		if e != nil {
			errs = append(errs, e...)
			continue
		}
		req.Messages = append(req.Messages, m)
		if len(errs) >= 100 { // enough to fix the sender; keep the answer small
			break
		}
	}
	if len(errs) > 0 {
		return keyOnly, errs
	}
	return req, nil
}

// parseEvent checks and normalizes one event.
func parseEvent(v *fastjson.Value, typ eventv1.EventType, index int, receivedAt, batchSentAt time.Time, batchContext *fastjson.Value, lim Limits) (Message, []*Error) {
	obj, err := v.Object()
	if err != nil {
		return Message{}, []*Error{badRequest(CodeInvalidJSON, index, "", "an event must be a JSON object, got %s", v.Type())}
	}
	if index >= 0 {
		if dup := duplicateKey(obj); dup != "" {
			return Message{}, []*Error{badRequest(CodeDuplicateKey, index, "/"+dup, "key %q appears more than once", dup)}
		}
	}
	var raw []byte
	if index < 0 {
		raw = v.MarshalTo(nil) // the whole body; re-encoded for a uniform form
	} else {
		raw = v.MarshalTo(make([]byte, 0, 512))
		if len(raw) > lim.MaxEventBytes {
			return Message{}, []*Error{{Status: 400, Code: CodeTooLarge, Index: index, Message: fmt.Sprintf("event is %d bytes; the limit is %d bytes per event", len(raw), lim.MaxEventBytes)}}
		}
	}

	var errs []*Error
	fail := func(e *Error) { errs = append(errs, e) }
	ev := &eventv1.Event{Type: typ}
	id := func(key string) string {
		s, err := optID(obj, key)
		if err != nil {
			fail(badRequest(CodeInvalidField, index, "/"+key, "must be a string or a number, got %s", obj.Get(key).Type()))
		}
		return s
	}
	str := func(key string) string {
		s, err := optString(obj, key)
		if err != nil {
			fail(badRequest(CodeInvalidField, index, "/"+key, "must be a string, got %s", obj.Get(key).Type()))
		}
		return s
	}
	ev.MessageId = id("messageId")
	ev.AnonymousId = id("anonymousId")
	ev.UserId = id("userId")
	switch typ {
	case eventv1.EventType_EVENT_TYPE_TRACK:
		if ev.Event = str("event"); strings.TrimSpace(ev.Event) == "" && !wrongType(obj, "event") {
			fail(badRequest(CodeMissingField, index, "/event", "a track call needs a non-empty event name"))
		}
	case eventv1.EventType_EVENT_TYPE_PAGE, eventv1.EventType_EVENT_TYPE_SCREEN:
		ev.Name = str("name")
		ev.Category = str("category")
	case eventv1.EventType_EVENT_TYPE_GROUP:
		if ev.GroupId = id("groupId"); ev.GroupId == "" && !wrongType(obj, "groupId") {
			fail(badRequest(CodeMissingField, index, "/groupId", "a group call needs a groupId"))
		}
	case eventv1.EventType_EVENT_TYPE_ALIAS:
		if ev.PreviousId = id("previousId"); ev.PreviousId == "" && !wrongType(obj, "previousId") {
			fail(badRequest(CodeMissingField, index, "/previousId", "an alias call needs a previousId"))
		}
	}
	if ev.UserId == "" && ev.AnonymousId == "" && !wrongType(obj, "userId") && !wrongType(obj, "anonymousId") {
		fail(badRequest(CodeMissingIdentity, index, "/userId", "either userId or anonymousId is required (a non-empty string)"))
	}

	for _, key := range []string{"properties", "traits", "integrations", "context"} {
		if f := obj.Get(key); f != nil && f.Type() != fastjson.TypeObject && f.Type() != fastjson.TypeNull {
			fail(badRequest(CodeInvalidField, index, "/"+key, "must be an object, got %s", f.Type()))
		}
	}
	ts, e := optTime(obj, "timestamp", index)
	if e != nil {
		fail(e)
	}
	orig, e := optTime(obj, "originalTimestamp", index)
	if e != nil {
		fail(e)
	}
	sentAt, e := optTime(obj, "sentAt", index)
	if e != nil {
		fail(e)
	}
	if len(errs) > 0 {
		return Message{}, errs
	}

	if sentAt.IsZero() {
		sentAt = batchSentAt
	}
	ev.ReceivedAt = timestamppb.New(receivedAt)
	if !sentAt.IsZero() {
		ev.SentAt = timestamppb.New(sentAt)
	}
	switch {
	case !ts.IsZero() && !orig.IsZero():
		// Both: the SDK kept its clock in originalTimestamp and the app set
		// the event time explicitly (RudderStack's SDKs, historical
		// imports). The explicit time is the event time, as rudder-server
		// treats it.
		ev.OriginalTimestamp = timestamppb.New(orig)
		ev.Timestamp = timestamppb.New(ts)
	default:
		if orig.IsZero() {
			orig = ts // Segment's SDKs send only "timestamp": the device clock
		}
		if !orig.IsZero() {
			ev.OriginalTimestamp = timestamppb.New(orig)
		}
		ev.Timestamp = timestamppb.New(EventTime(receivedAt, sentAt, orig))
	}
	if ev.MessageId == "" {
		ev.MessageId = messageID(raw, sentAt, ev.OriginalTimestamp != nil)
	}

	ev.PropertiesJson = objectJSON(obj.Get("properties"))
	ev.TraitsJson = objectJSON(obj.Get("traits"))
	ev.IntegrationsJson = objectJSON(obj.Get("integrations"))
	ctx := obj.Get("context")
	if ctx != nil && ctx.Type() == fastjson.TypeNull {
		ctx = nil
	}
	if batchContext != nil && batchContext.Type() == fastjson.TypeObject {
		ctx = mergeContext(batchContext, ctx)
	}
	if ctx != nil {
		ev.ContextJson = ctx.MarshalTo(nil)
		ev.Context = parseContext(ctx)
		if len(ev.TraitsJson) == 0 && typ == eventv1.EventType_EVENT_TYPE_IDENTIFY {
			// analytics.js puts identify traits in context.traits when the
			// call has none of its own.
			ev.TraitsJson = objectJSON(ctx.Get("traits"))
		}
	}
	return Message{Raw: raw, Event: ev, SentAt: sentAt}, nil
}

// messageID fills in a missing messageId. When the event carries its own
// client time, the id is derived from its bytes and sentAt, so a sender that
// retries the same request after a 503 produces the same id and the retry is
// deduplicated; without any client time two identical calls may well be two
// real events, so they get random ids, as Segment does.
func messageID(raw []byte, sentAt time.Time, hasClientTime bool) string {
	if !hasClientTime {
		return uuid.NewString()
	}
	h := sha256.New()
	h.Write(raw)
	h.Write([]byte(sentAt.UTC().Format(time.RFC3339Nano)))
	return "fp-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// EventTime applies Segment's clock-skew correction: the device clock may be
// wrong, but the time between the event and the request (sentAt -
// originalTimestamp) is measured on that same clock, so the event happened
// that long before the server received the request. Without sentAt the
// device's timestamp is taken as it is; without any timestamp, receivedAt.
func EventTime(receivedAt, sentAt, original time.Time) time.Time {
	switch {
	case !original.IsZero() && !sentAt.IsZero():
		return receivedAt.Add(-sentAt.Sub(original)).UTC()
	case !original.IsZero():
		return original.UTC()
	default:
		return receivedAt.UTC()
	}
}

// mergeContext returns the batch-level context with the event's own context
// keys on top (the event wins), without changing either input.
func mergeContext(batchCtx, eventCtx *fastjson.Value) *fastjson.Value {
	if eventCtx == nil || eventCtx.Type() != fastjson.TypeObject {
		return batchCtx
	}
	var a fastjson.Arena
	merged := a.NewObject()
	batchCtx.GetObject().Visit(func(k []byte, v *fastjson.Value) { merged.Set(string(k), v) })
	eventCtx.GetObject().Visit(func(k []byte, v *fastjson.Value) { merged.Set(string(k), v) })
	return merged
}

func objectJSON(v *fastjson.Value) []byte {
	if v == nil || v.Type() != fastjson.TypeObject {
		return nil
	}
	return v.MarshalTo(nil)
}

// optString returns a string field; absent or null is "".
func optString(obj *fastjson.Object, key string) (string, error) {
	v := obj.Get(key)
	if v == nil || v.Type() == fastjson.TypeNull {
		return "", nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// optID returns an identifier field. Segment's SDKs send strings, but many
// backends send numeric ids; a number is kept as its exact JSON text.
func optID(obj *fastjson.Object, key string) (string, error) {
	v := obj.Get(key)
	if v == nil || v.Type() == fastjson.TypeNull {
		return "", nil
	}
	switch v.Type() {
	case fastjson.TypeString:
		return strings.TrimSpace(string(v.GetStringBytes())), nil
	case fastjson.TypeNumber:
		return string(v.MarshalTo(nil)), nil
	}
	return "", errWrongType
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errWrongType = constErr("wrong type")

// optTime parses an ISO-8601 timestamp field; absent or null is zero.
func optTime(obj *fastjson.Object, key string, index int) (time.Time, *Error) {
	v := obj.Get(key)
	if v == nil || v.Type() == fastjson.TypeNull {
		return time.Time{}, nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return time.Time{}, badRequest(CodeInvalidField, index, "/"+key, "must be an ISO-8601 string, got %s", v.Type())
	}
	t, ok := ParseTime(string(b))
	if !ok {
		return time.Time{}, badRequest(CodeInvalidField, index, "/"+key, "%q is not an ISO-8601 timestamp (e.g. 2024-05-01T12:30:00.000Z)", truncate(string(b), 64))
	}
	return t, nil
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999", // no zone: UTC, as Segment assumes
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// ParseTime accepts the ISO-8601 forms SDKs send, in UTC. Years outside
// 1970..9999 are refused: they are clock bugs, not events.
func ParseTime(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				return time.Time{}, false
			}
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// duplicateKey returns a key that appears twice in obj, or "". JSON allows
// duplicates but readers disagree on which wins; for an event that decides
// whose profile it lands on, refusing is the only safe answer.
func duplicateKey(obj *fastjson.Object) string {
	if obj.Len() < 2 {
		return ""
	}
	dup := ""
	seen := make(map[string]struct{}, obj.Len())
	obj.Visit(func(k []byte, _ *fastjson.Value) {
		if dup != "" {
			return
		}
		if _, ok := seen[string(k)]; ok {
			dup = string(k)
			return
		}
		seen[string(k)] = struct{}{}
	})
	return dup
}

// depth returns the deepest nesting of objects and arrays in a JSON text,
// scanning bytes only, so a hostile document is refused before a parser
// recurses into it.
func depth(b []byte) int {
	d, maxD := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if d++; d > maxD {
				maxD = d
			}
		case '}', ']':
			d--
		}
	}
	return maxD
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// wrongType reports whether key is present with a value that is neither a
// string, a number nor null (already reported as invalid_field).
func wrongType(obj *fastjson.Object, key string) bool {
	v := obj.Get(key)
	if v == nil {
		return false
	}
	switch v.Type() {
	case fastjson.TypeString, fastjson.TypeNumber, fastjson.TypeNull:
		return false
	}
	return true
}
