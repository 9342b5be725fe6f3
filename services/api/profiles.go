package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/history"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/profileview"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/stage"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

// profileAPI is the customer 360 (apiv1.ProfileService; paths and scopes
// in proto/api/v1/profiles.proto). Personal data is masked for keys
// without pii:read (pii.Redaction).
type profileAPI struct {
	apiv1.UnimplementedProfileServiceServer
	graph    *identity.Graph
	segments *segstate.Store
	consent  *consent.Store
	history  *history.Reader // nil: no ClickHouse, ListProfileEvents is UNAVAILABLE
	auth     *auth
	// changes announces splits on cdp.profiles.changes.
	changes      stage.Sink
	changesTopic string
	now          func() time.Time
}

// UnlinkProfile cuts a wrong link between two identifiers (pkg/identity
// Unlink), announces the split on cdp.profiles.changes, and answers what
// became of the profile.
func (p *profileAPI) UnlinkProfile(ctx context.Context, req *apiv1.UnlinkProfileRequest) (*apiv1.UnlinkProfileResponse, error) {
	key, err := p.auth.authorize(ctx, access.ProfilesWrite)
	if err != nil {
		return nil, err
	}
	ws, red := key.Workspace, p.auth.redaction(key)
	a, okA := parseIdentifier(req.Id)
	b, okB := parseIdentifier(req.Identifier)
	switch {
	case !okA:
		return nil, invalid("the profile id must be <type>:<value>, e.g. user_id:42", withField("id"))
	case !okB:
		return nil, invalid(`send {"identifier": "<type>:<value>", "reason": "why the link is wrong"} to unlink it from the profile's identifier in the path`, withField("identifier"))
	case strings.TrimSpace(req.Reason) == "":
		return nil, invalid("reason is required: say why the link is wrong (it is kept in the profile's history)", withField("reason"))
	}
	split, err := p.graph.Unlink(ctx, ws, a, b, req.Reason, p.now())
	if errors.Is(err, identity.ErrSameIdentifier) {
		return nil, invalid(err.Error(), withField("identifier"))
	}
	if err != nil {
		return nil, unavailable("profile store unavailable; retry")
	}
	if split.Status == identity.SplitNotLinked {
		return nil, rpcError(codes.FailedPrecondition, profileview.Identifier(red, a.Type, a.Value)+" and "+profileview.Identifier(red, b.Type, b.Value)+" are not on one profile")
	}
	cause := "unlink/" + a.String() + "|" + b.String() + "/" + split.ProfileID
	var msgs []kafka.Message
	for _, c := range split.Changes(ws, cause, p.now()) {
		v, _ := proto.Marshal(c)
		msgs = append(msgs, kafka.Message{Topic: p.changesTopic, Key: []byte(c.ProfileId), Value: v})
	}
	if len(msgs) > 0 && p.changes != nil {
		if err := p.changes.Produce(ctx, msgs...); err != nil {
			// The split is done in Redis; announcing it failed. Retrying the
			// call answers not_linked, so say it plainly.
			return nil, unavailable("the profile was split but the change could not be announced on Kafka: " + err.Error())
		}
	}
	out := &apiv1.UnlinkProfileResponse{Status: split.Status, ProfileId: split.ProfileID, Pieces: []*apiv1.ProfilePiece{}}
	for _, pc := range split.Pieces {
		x := &apiv1.ProfilePiece{ProfileId: pc.ProfileID}
		for _, id := range pc.Identifiers {
			x.Identities = append(x.Identities, &apiv1.Identity{Type: id.Type, Value: profileview.Value(red, id.Type, id.Value)})
		}
		out.Pieces = append(out.Pieces, x)
	}
	for _, edge := range split.Path {
		out.Path = append(out.Path, maskEdge(red, edge))
	}
	return out, nil
}

// maskEdge masks both ends of an evidence edge "<type:value>|<type:value>".
func maskEdge(red *pii.Redaction, edge string) string {
	if red == nil {
		return edge
	}
	ends := strings.Split(edge, "|")
	for i, e := range ends {
		if t, v, ok := strings.Cut(e, ":"); ok {
			ends[i] = profileview.Identifier(red, t, v)
		}
	}
	return strings.Join(ends, "|")
}

func parseIdentifier(s string) (identity.Identifier, bool) {
	t, v, ok := strings.Cut(s, ":")
	return identity.Identifier{Type: t, Value: v}, ok && t != "" && v != ""
}

// GetProfile answers a profile: identities, traits, counters, lineage,
// current segments and recorded consent.
func (p *profileAPI) GetProfile(ctx context.Context, req *apiv1.GetProfileRequest) (*apiv1.Profile, error) {
	key, err := p.auth.authorize(ctx, access.ProfilesRead)
	if err != nil {
		return nil, err
	}
	prof, err := p.lookup(ctx, key, req.Id)
	if err != nil {
		return nil, err
	}
	return p.render(ctx, key, prof)
}

// lookup resolves an identifier to its profile.
func (p *profileAPI) lookup(ctx context.Context, key access.Key, s string) (identity.Profile, error) {
	id, ok := parseIdentifier(s)
	if !ok {
		return identity.Profile{}, invalid("the profile id must be <type>:<value>, e.g. user_id:42 or email:a@b.c", withField("id"))
	}
	prof, err := p.graph.Lookup(ctx, key.Workspace, id)
	if errors.Is(err, identity.ErrNotFound) {
		return identity.Profile{}, missing("no profile holds " + profileview.Identifier(p.auth.redaction(key), id.Type, id.Value))
	}
	if err != nil {
		return identity.Profile{}, unavailable("profile store unavailable; retry")
	}
	return prof, nil
}

func (p *profileAPI) render(ctx context.Context, key access.Key, prof identity.Profile) (*apiv1.Profile, error) {
	ms, err := p.segments.Memberships(ctx, key.Workspace, prof.ID)
	if err != nil {
		return nil, unavailable("segment store unavailable; retry")
	}
	segs := []string{}
	for _, m := range ms {
		segs = append(segs, m.SegmentID)
	}
	var cs consent.State
	if p.consent != nil {
		ids := make([]consent.Identifier, len(prof.Identities))
		for i, id := range prof.Identities {
			ids[i] = consent.Identifier{Type: id.Type, Value: id.Value}
		}
		if cs, err = p.consent.Read(ctx, key.Workspace, ids); err != nil {
			return nil, unavailable("consent store unavailable; retry")
		}
	}
	return profileMessage(profileview.Render(prof, segs, cs, p.auth.redaction(key))), nil
}

// profileMessage is the wire form of a rendered profile.
func profileMessage(v profileview.Profile) *apiv1.Profile {
	out := &apiv1.Profile{ProfileId: v.ProfileID, Traits: jsonValues(v.Traits), Segments: v.Segments, Counters: v.Counters,
		FirstSeen: timestamp(v.FirstSeen), LastSeen: timestamp(v.LastSeen), Version: v.Version, MergedProfiles: v.MergedProfiles,
		Consent: consentMessages(v.Consent), PiiMasked: v.PIIMasked}
	for _, id := range v.Identities {
		out.Identities = append(out.Identities, &apiv1.Identity{Type: id.Type, Value: id.Value})
	}
	return out
}

func consentMessages(cs map[string]consent.Decision) map[string]*apiv1.ConsentDecision {
	out := make(map[string]*apiv1.ConsentDecision, len(cs))
	for c, d := range cs {
		out[c] = &apiv1.ConsentDecision{Granted: d.Granted, At: timestamp(d.At), Source: d.Source, Identifier: d.Identifier}
	}
	return out
}

// timestamp is t on the wire; the zero time is absent.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// jsonValues converts JSON values (traits) to protobuf Values; a value
// that is not JSON (never written by the stitcher) is kept as its text.
func jsonValues(m map[string]json.RawMessage) map[string]*structpb.Value {
	out := make(map[string]*structpb.Value, len(m))
	for k, raw := range m {
		v := &structpb.Value{}
		if err := protojson.Unmarshal(raw, v); err != nil {
			v = structpb.NewStringValue(string(raw))
		}
		out[k] = v
	}
	return out
}

// jsonObject converts a JSON object to a Struct; null, absent or not an
// object: nil.
func jsonObject(raw json.RawMessage) *structpb.Struct {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, s); err != nil {
		return nil
	}
	return s
}

// ListProfileEvents answers a profile's most recent events from
// ClickHouse, newest first: those resolved to the profile or to any profile
// merged into it (the lineage Redis keeps).
func (p *profileAPI) ListProfileEvents(ctx context.Context, req *apiv1.ListProfileEventsRequest) (*apiv1.ListProfileEventsResponse, error) {
	key, err := p.auth.authorize(ctx, access.ProfilesRead)
	if err != nil {
		return nil, err
	}
	limit, err := bounded("limit", req.Limit, 50, 1, 1000)
	if err != nil {
		return nil, err
	}
	prof, err := p.lookup(ctx, key, req.Id)
	if err != nil {
		return nil, err
	}
	if p.history == nil {
		return nil, unavailable("no event history configured (ClickHouse)")
	}
	evs, err := p.history.Recent(ctx, key.Workspace, append([]string{prof.ID}, prof.Merged...), limit)
	if err != nil {
		return nil, unavailable("event history unavailable; retry")
	}
	red := p.auth.redaction(key)
	out := &apiv1.ListProfileEventsResponse{ProfileId: prof.ID, Events: make([]*apiv1.Event, 0, len(evs)), PiiMasked: red != nil}
	for _, e := range evs {
		out.Events = append(out.Events, eventMessage(privacy.MaskEvent(e, red)))
	}
	return out, nil
}

func eventMessage(e history.Event) *apiv1.Event {
	return &apiv1.Event{MessageId: e.MessageID, SourceId: e.SourceID, Type: e.Type, Event: e.Event, Name: e.Name,
		AnonymousId: e.AnonymousID, UserId: e.UserID, ProfileId: e.ProfileID, Timestamp: timestamp(e.Timestamp),
		ReceivedAt: timestamp(e.ReceivedAt), Properties: jsonObject(e.Properties), Traits: jsonObject(e.Traits),
		Context: jsonObject(e.Context), TraceId: e.TraceID}
}

// Search pages: at most this many matches per answer by default and at
// most maxSearchResults when asked.
const (
	defaultSearchResults = 100
	maxSearchResults     = 1000
)

// SearchProfiles answers one bounded page of a scan over the workspace's
// profiles. An empty page with a non-empty cursor is normal; the search is
// complete when the answer's cursor is "". The cursor is the scan's, with
// ".<profile id>" when the page stopped inside a scan step (max_results):
// the next page scans that step again from just after that profile, so a
// change in between cannot make it skip a match.
func (p *profileAPI) SearchProfiles(ctx context.Context, req *apiv1.SearchProfilesRequest) (*apiv1.SearchProfilesResponse, error) {
	key, err := p.auth.authorize(ctx, access.ProfilesRead)
	if err != nil {
		return nil, err
	}
	if req.Trait == "" || req.Value == nil {
		return nil, invalid("search with ?trait=<name>&value=<value>, e.g. ?trait=plan&value=pro; page on with the answer's cursor", withField("trait"))
	}
	red := p.auth.redaction(key)
	if red != nil {
		if masked := red.Traits(map[string]json.RawMessage{req.Trait: json.RawMessage(`"xx"`)}); string(masked[req.Trait]) != `"xx"` {
			return nil, rpcError(codes.PermissionDenied, "searching by the personal trait "+req.Trait+" needs the scope "+string(access.PIIRead), withScope(string(access.PIIRead)))
		}
	}
	cursor, after, err := parseSearchCursor(req.Cursor)
	if err != nil {
		return nil, err
	}
	count, err := bounded("count", req.Count, 500, 1, identity.MaxSearchCount)
	if err != nil {
		return nil, err
	}
	limit, err := bounded("max_results", req.MaxResults, defaultSearchResults, 1, maxSearchResults)
	if err != nil {
		return nil, err
	}
	pids, next, err := p.graph.SearchTraitAfter(ctx, key.Workspace, req.Trait, *req.Value, cursor, int64(count), after)
	if err != nil {
		return nil, unavailable("profile store unavailable; retry")
	}
	nextCursor := ""
	if next != 0 {
		nextCursor = strconv.FormatUint(next, 10)
	}
	if len(pids) > limit {
		pids = pids[:limit]
		nextCursor = strconv.FormatUint(cursor, 10) + "." + pids[limit-1]
	}
	profs, err := p.graph.Profiles(ctx, key.Workspace, pids)
	if err != nil {
		return nil, unavailable("profile store unavailable; retry")
	}
	out := &apiv1.SearchProfilesResponse{Profiles: []*apiv1.Profile{}, Cursor: nextCursor}
	for _, pid := range pids {
		prof, ok := profs[pid]
		if !ok || prof.ID != pid {
			continue // erased or merged away since the scan
		}
		view, err := p.render(ctx, key, prof)
		if err != nil {
			return nil, err
		}
		out.Profiles = append(out.Profiles, view)
	}
	return out, nil
}

// parseSearchCursor reads "<scan cursor>[.<profile id>]".
func parseSearchCursor(s string) (uint64, string, error) {
	if s == "" {
		return 0, "", nil
	}
	c, after, hasAfter := strings.Cut(s, ".")
	cursor, err := strconv.ParseUint(c, 10, 64)
	if err != nil || (hasAfter && (after == "" || len(after) > 128)) {
		return 0, "", invalid("cursor must be the cursor of the previous answer", withField("cursor"))
	}
	return cursor, after, nil
}

// bounded is n, def when 0, checked against [lo, hi].
func bounded(name string, n int32, def, lo, hi int) (int, error) {
	if n == 0 {
		return def, nil
	}
	if int(n) < lo || int(n) > hi {
		return 0, invalid(fmt.Sprintf("%s must be a whole number from %d to %d", name, lo, hi), withField(name))
	}
	return int(n), nil
}
