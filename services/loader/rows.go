package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// The row types below are the loader's pure core: one protobuf message in,
// one row of its table out, no I/O. Their `ch` tags name the columns; the
// insert statement's column list is derived from them (columnsOf), and a
// test checks them against the migrated tables, so the Go side and the SQL
// side cannot drift apart.

// eventRow is a row of events.
type eventRow struct {
	WorkspaceID                string    `ch:"workspace_id"`
	SourceID                   string    `ch:"source_id"`
	MessageID                  string    `ch:"message_id"`
	Type                       string    `ch:"type"`
	Event                      string    `ch:"event"`
	Name                       string    `ch:"name"`
	Category                   string    `ch:"category"`
	AnonymousID                string    `ch:"anonymous_id"`
	UserID                     string    `ch:"user_id"`
	GroupID                    string    `ch:"group_id"`
	PreviousID                 string    `ch:"previous_id"`
	ProfileID                  string    `ch:"profile_id"`
	Timestamp                  time.Time `ch:"timestamp"`
	TimestampMs                uint16    `ch:"timestamp_ms"`
	OriginalTimestamp          time.Time `ch:"original_timestamp"`
	OriginalTimestampMs        uint16    `ch:"original_timestamp_ms"`
	SentAt                     time.Time `ch:"sent_at"`
	SentAtMs                   uint16    `ch:"sent_at_ms"`
	ReceivedAt                 time.Time `ch:"received_at"`
	ReceivedAtMs               uint16    `ch:"received_at_ms"`
	ResolvedAt                 time.Time `ch:"resolved_at"`
	ResolvedAtMs               uint16    `ch:"resolved_at_ms"`
	ContextIP                  string    `ch:"context_ip"`
	ContextUserAgent           string    `ch:"context_user_agent"`
	ContextLocale              string    `ch:"context_locale"`
	ContextTimezone            string    `ch:"context_timezone"`
	ContextGroupID             string    `ch:"context_group_id"`
	ContextLibraryName         string    `ch:"context_library_name"`
	ContextLibraryVersion      string    `ch:"context_library_version"`
	ContextPageURL             string    `ch:"context_page_url"`
	ContextPagePath            string    `ch:"context_page_path"`
	ContextPageReferrer        string    `ch:"context_page_referrer"`
	ContextPageTitle           string    `ch:"context_page_title"`
	ContextPageSearch          string    `ch:"context_page_search"`
	ContextCampaignName        string    `ch:"context_campaign_name"`
	ContextCampaignSource      string    `ch:"context_campaign_source"`
	ContextCampaignMedium      string    `ch:"context_campaign_medium"`
	ContextCampaignTerm        string    `ch:"context_campaign_term"`
	ContextCampaignContent     string    `ch:"context_campaign_content"`
	ContextDeviceID            string    `ch:"context_device_id"`
	ContextDeviceAdvertisingID string    `ch:"context_device_advertising_id"`
	ContextDeviceType          string    `ch:"context_device_type"`
	ContextDeviceManufacturer  string    `ch:"context_device_manufacturer"`
	ContextDeviceModel         string    `ch:"context_device_model"`
	ContextDeviceName          string    `ch:"context_device_name"`
	ContextOSName              string    `ch:"context_os_name"`
	ContextOSVersion           string    `ch:"context_os_version"`
	ContextAppName             string    `ch:"context_app_name"`
	ContextAppVersion          string    `ch:"context_app_version"`
	ContextAppBuild            string    `ch:"context_app_build"`
	ContextAppNamespace        string    `ch:"context_app_namespace"`
	ContextScreenWidth         int32     `ch:"context_screen_width"`
	ContextScreenHeight        int32     `ch:"context_screen_height"`
	ContextScreenDensity       float64   `ch:"context_screen_density"`
	Properties                 string    `ch:"properties"`
	Traits                     string    `ch:"traits"`
	Context                    string    `ch:"context"`
	Integrations               string    `ch:"integrations"`
	PlanID                     string    `ch:"plan_id"`
	PlanVersion                uint32    `ch:"plan_version"`
	Violations                 uint16    `ch:"violations"`
	RequestID                  string    `ch:"request_id"`
	TraceID                    string    `ch:"trace_id"`
	LoadedAt                   time.Time `ch:"loaded_at"`
	Version                    uint64    `ch:"version"`
}

// rejectedRow is a row of rejected_events.
type rejectedRow struct {
	RejectionID  string    `ch:"rejection_id"`
	WorkspaceID  string    `ch:"workspace_id"`
	SourceID     string    `ch:"source_id"`
	MessageID    string    `ch:"message_id"`
	Stage        string    `ch:"stage"`
	Reason       string    `ch:"reason"`
	Field        string    `ch:"field"`
	Rule         string    `ch:"rule"`
	Detail       string    `ch:"detail"`
	Reasons      []string  `ch:"reasons"`
	Fields       []string  `ch:"fields"`
	Rules        []string  `ch:"rules"`
	Details      []string  `ch:"details"`
	Violations   uint16    `ch:"violations"`
	Type         string    `ch:"type"`
	Event        string    `ch:"event"`
	AnonymousID  string    `ch:"anonymous_id"`
	UserID       string    `ch:"user_id"`
	ReceivedAt   time.Time `ch:"received_at"`
	RejectedAt   time.Time `ch:"rejected_at"`
	RejectedAtMs uint16    `ch:"rejected_at_ms"`
	Raw          string    `ch:"raw"`
	Origin       string    `ch:"origin"`
	TraceID      string    `ch:"trace_id"`
	LoadedAt     time.Time `ch:"loaded_at"`
	Version      uint64    `ch:"version"`
}

// profileChangeRow is a row of profile_changes.
type profileChangeRow struct {
	ChangeID          string    `ch:"change_id"`
	WorkspaceID       string    `ch:"workspace_id"`
	ProfileID         string    `ch:"profile_id"`
	Kind              string    `ch:"kind"`
	OccurredAt        time.Time `ch:"occurred_at"`
	OccurredAtMs      uint16    `ch:"occurred_at_ms"`
	CauseMessageID    string    `ch:"cause_message_id"`
	IdentityTypes     []string  `ch:"identity_types"`
	IdentityValues    []string  `ch:"identity_values"`
	RelatedProfileIDs []string  `ch:"related_profile_ids"`
	TraitKeys         []string  `ch:"trait_keys"`
	TraitOldValues    []string  `ch:"trait_old_values"`
	TraitNewValues    []string  `ch:"trait_new_values"`
	Detail            string    `ch:"detail"`
	TraceID           string    `ch:"trace_id"`
	LoadedAt          time.Time `ch:"loaded_at"`
	Version           uint64    `ch:"version"`
}

// membershipRow is a row of segment_memberships.
type membershipRow struct {
	MembershipID   string    `ch:"membership_id"`
	WorkspaceID    string    `ch:"workspace_id"`
	SegmentID      string    `ch:"segment_id"`
	SegmentVersion uint32    `ch:"segment_version"`
	ProfileID      string    `ch:"profile_id"`
	Transition     string    `ch:"transition"`
	OccurredAt     time.Time `ch:"occurred_at"`
	OccurredAtMs   uint16    `ch:"occurred_at_ms"`
	EvaluatedAt    time.Time `ch:"evaluated_at"`
	EvaluatedAtMs  uint16    `ch:"evaluated_at_ms"`
	CauseID        string    `ch:"cause_id"`
	TraceID        string    `ch:"trace_id"`
	LoadedAt       time.Time `ch:"loaded_at"`
	Version        uint64    `ch:"version"`
}

// identityRow is a row of identities (see identities.go).
type identityRow struct {
	WorkspaceID string    `ch:"workspace_id"`
	Type        string    `ch:"identifier_type"`
	Value       string    `ch:"identifier_value"`
	ProfileID   string    `ch:"profile_id"`
	ChangeID    string    `ch:"change_id"`
	UpdatedAt   time.Time `ch:"updated_at"`
	Version     uint64    `ch:"version"`
}

// columnsOf lists the `ch` tags of a row struct, in field order.
func columnsOf(row any) []string {
	t := reflect.TypeOf(row)
	cols := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if c := t.Field(i).Tag.Get("ch"); c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}

// meta is what the loader adds to every row from the Kafka message.
type meta struct {
	traceID  string
	loadedAt time.Time
	// msgTime is the Kafka message's timestamp: the event time of last
	// resort when a message carries none.
	msgTime time.Time
}

// errIncomplete marks a message that decoded but lacks what its row needs
// to be identified (a message id, a workspace): a format violation.
var errIncomplete = errors.New("incomplete message")

func incomplete(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errIncomplete, fmt.Sprintf(format, args...))
}

// maxDateTime is the last second a DateTime (UInt32) holds.
const maxDateTime = math.MaxUint32

// chTime splits a protobuf timestamp into the DateTime and the millisecond
// columns. Absent is the epoch (DateTime's zero); instants outside what a
// DateTime holds are clamped to its range.
func chTime(ts *timestamppb.Timestamp) (time.Time, uint16) {
	if ts == nil {
		return time.Unix(0, 0).UTC(), 0
	}
	return splitTime(ts.AsTime())
}

func splitTime(t time.Time) (time.Time, uint16) {
	s := t.Unix()
	switch {
	case s < 0:
		return time.Unix(0, 0).UTC(), 0
	case s > maxDateTime:
		return time.Unix(maxDateTime, 0).UTC(), 999
	}
	return time.Unix(s, 0).UTC(), uint16(t.Nanosecond() / int(time.Millisecond))
}

// unixMilli is a version column's value for an instant (0 when absent).
func unixMilli(ts *timestamppb.Timestamp) uint64 {
	if ts == nil || ts.AsTime().Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(ts.AsTime().UnixMilli())
}

// enumName turns EVENT_TYPE_TRACK into "track", REASON_FORMAT_VIOLATION into
// "format_violation"; the unspecified value becomes "".
func enumName(full, prefix string) string {
	n := strings.ToLower(strings.TrimPrefix(full, prefix))
	if n == "unspecified" {
		return ""
	}
	return n
}

// newEventRow flattens a resolved envelope.
func newEventRow(env *eventv1.Envelope, m meta) (eventRow, error) {
	ev := env.GetEvent()
	switch {
	case env.GetWorkspaceId() == "":
		return eventRow{}, incomplete("envelope has no workspace_id")
	case env.GetMessageId() == "":
		return eventRow{}, incomplete("envelope has no message_id")
	case ev == nil:
		return eventRow{}, incomplete("envelope %s has no event", env.GetMessageId())
	}
	c := ev.GetContext()
	r := eventRow{
		WorkspaceID: env.WorkspaceId, SourceID: env.SourceId, MessageID: env.MessageId,
		Type: enumName(ev.Type.String(), "EVENT_TYPE_"), Event: ev.Event, Name: ev.Name, Category: ev.Category,
		AnonymousID: ev.AnonymousId, UserID: ev.UserId, GroupID: ev.GroupId, PreviousID: ev.PreviousId,
		ProfileID: env.GetResolution().GetProfileId(),

		ContextIP: c.GetIp(), ContextUserAgent: c.GetUserAgent(), ContextLocale: c.GetLocale(), ContextTimezone: c.GetTimezone(),
		ContextGroupID:     c.GetGroupId(),
		ContextLibraryName: c.GetLibrary().GetName(), ContextLibraryVersion: c.GetLibrary().GetVersion(),
		ContextPageURL: c.GetPage().GetUrl(), ContextPagePath: c.GetPage().GetPath(), ContextPageReferrer: c.GetPage().GetReferrer(),
		ContextPageTitle: c.GetPage().GetTitle(), ContextPageSearch: c.GetPage().GetSearch(),
		ContextCampaignName: c.GetCampaign().GetName(), ContextCampaignSource: c.GetCampaign().GetSource(),
		ContextCampaignMedium: c.GetCampaign().GetMedium(), ContextCampaignTerm: c.GetCampaign().GetTerm(),
		ContextCampaignContent: c.GetCampaign().GetContent(),
		ContextDeviceID:        c.GetDevice().GetId(), ContextDeviceAdvertisingID: c.GetDevice().GetAdvertisingId(),
		ContextDeviceType: c.GetDevice().GetType(), ContextDeviceManufacturer: c.GetDevice().GetManufacturer(),
		ContextDeviceModel: c.GetDevice().GetModel(), ContextDeviceName: c.GetDevice().GetName(),
		ContextOSName: c.GetOs().GetName(), ContextOSVersion: c.GetOs().GetVersion(),
		ContextAppName: c.GetApp().GetName(), ContextAppVersion: c.GetApp().GetVersion(),
		ContextAppBuild: c.GetApp().GetBuild(), ContextAppNamespace: c.GetApp().GetNamespace(),
		ContextScreenWidth: c.GetScreen().GetWidth(), ContextScreenHeight: c.GetScreen().GetHeight(),
		ContextScreenDensity: c.GetScreen().GetDensity(),

		Properties: string(ev.PropertiesJson), Traits: string(ev.TraitsJson),
		Context: string(ev.ContextJson), Integrations: string(ev.IntegrationsJson),
		PlanID: env.GetValidation().GetPlanId(), PlanVersion: env.GetValidation().GetPlanVersion(),
		Violations: clampCount(len(env.GetValidation().GetViolations())),
		RequestID:  env.GetCollector().GetRequestId(),
		TraceID:    m.traceID, LoadedAt: m.loadedAt.UTC().Truncate(time.Second),
		Version: unixMilli(env.GetResolution().GetResolvedAt()),
	}
	received := ev.ReceivedAt
	if received == nil {
		received = env.GetCollector().GetReceivedAt()
	}
	sent := ev.SentAt
	if sent == nil {
		sent = env.GetCollector().GetSentAt()
	}
	r.OriginalTimestamp, r.OriginalTimestampMs = chTime(ev.OriginalTimestamp)
	r.SentAt, r.SentAtMs = chTime(sent)
	r.ReceivedAt, r.ReceivedAtMs = chTime(received)
	r.ResolvedAt, r.ResolvedAtMs = chTime(env.GetResolution().GetResolvedAt())
	// Event time: skew-corrected, else when it was received, else when it
	// reached Kafka; it decides the partition, so it is never left empty.
	switch {
	case ev.Timestamp != nil:
		r.Timestamp, r.TimestampMs = chTime(ev.Timestamp)
	case received != nil:
		r.Timestamp, r.TimestampMs = r.ReceivedAt, r.ReceivedAtMs
	default:
		r.Timestamp, r.TimestampMs = splitTime(m.msgTime)
	}
	return r, nil
}

func clampCount(n int) uint16 {
	if n > math.MaxUint16 {
		return math.MaxUint16
	}
	return uint16(n)
}

// digest names a rejection by the bytes that carried it, so a redelivered
// copy collapses onto the first.
func digest(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// newRejectedRow flattens a Rejection from cdp.events.invalid.
func newRejectedRow(rej *eventv1.Rejection, value []byte, origin string, m meta) rejectedRow {
	env := rej.GetEnvelope()
	ev := env.GetEvent()
	r := rejectedRow{
		RejectionID: digest(value),
		WorkspaceID: env.GetWorkspaceId(), SourceID: env.GetSourceId(), MessageID: env.GetMessageId(),
		Stage: rej.GetStage(),
		Type:  enumName(ev.GetType().String(), "EVENT_TYPE_"), Event: ev.GetEvent(),
		AnonymousID: ev.GetAnonymousId(), UserID: ev.GetUserId(),
		Raw: string(env.GetRaw()), Origin: origin, TraceID: m.traceID, LoadedAt: m.loadedAt.UTC().Truncate(time.Second),
		Reasons: []string{}, Fields: []string{}, Rules: []string{}, Details: []string{},
	}
	if r.MessageID == "" {
		r.MessageID = ev.GetMessageId()
	}
	for _, v := range rej.GetViolations() {
		r.Reasons = append(r.Reasons, enumName(v.GetReason().String(), "REASON_"))
		r.Fields = append(r.Fields, v.GetField())
		r.Rules = append(r.Rules, v.GetRule())
		r.Details = append(r.Details, v.GetDetail())
	}
	if len(r.Reasons) > 0 {
		r.Reason, r.Field, r.Rule, r.Detail = r.Reasons[0], r.Fields[0], r.Rules[0], r.Details[0]
	}
	r.Violations = clampCount(len(r.Reasons))
	received := ev.GetReceivedAt()
	if received == nil {
		received = env.GetCollector().GetReceivedAt()
	}
	r.ReceivedAt, _ = chTime(received)
	if rej.GetRejectedAt() != nil {
		r.RejectedAt, r.RejectedAtMs = chTime(rej.GetRejectedAt())
	} else {
		r.RejectedAt, r.RejectedAtMs = splitTime(m.msgTime)
	}
	r.Version = uint64(r.RejectedAt.Unix())*1000 + uint64(r.RejectedAtMs)
	return r
}

// maxRaw bounds the bytes of an undecodable message kept in its row.
const maxRaw = 64 << 10

// newUndecodableRow records a message the loader could not turn into a row
// of its table: stage "loader", reason "format_violation". ids, if known,
// are the workspace, source and message id the message did carry.
func newUndecodableRow(msg kafka.Message, cause error, ids [3]string, m meta) rejectedRow {
	raw := msg.Value
	if len(raw) > maxRaw {
		raw = raw[:maxRaw]
	}
	detail := fmt.Sprintf("loader cannot load this message from %s: %v", msg.Topic, cause)
	r := rejectedRow{
		RejectionID: digest([]byte("loader"), []byte(msg.Topic), msg.Value),
		WorkspaceID: ids[0], SourceID: ids[1], MessageID: ids[2],
		Stage: "loader", Reason: "format_violation", Detail: detail,
		Reasons: []string{"format_violation"}, Fields: []string{""}, Rules: []string{"decode"}, Details: []string{detail},
		Rule: "decode", Violations: 1,
		Raw: string(raw), Origin: msg.Topic + "/" + strconv.Itoa(msg.Partition) + "/" + strconv.FormatInt(msg.Offset, 10),
		TraceID: m.traceID, LoadedAt: m.loadedAt.UTC().Truncate(time.Second),
	}
	r.ReceivedAt, _ = splitTime(m.msgTime)
	r.RejectedAt, r.RejectedAtMs = splitTime(m.msgTime)
	r.Version = uint64(r.RejectedAt.Unix())*1000 + uint64(r.RejectedAtMs)
	return r
}

// newProfileChangeRow flattens a ProfileChange.
func newProfileChangeRow(c *profilev1.ProfileChange, m meta) (profileChangeRow, error) {
	switch {
	case c.GetWorkspaceId() == "":
		return profileChangeRow{}, incomplete("profile change has no workspace_id")
	case c.GetChangeId() == "":
		return profileChangeRow{}, incomplete("profile change has no change_id")
	case c.GetProfileId() == "":
		return profileChangeRow{}, incomplete("profile change %s has no profile_id", c.GetChangeId())
	}
	r := profileChangeRow{
		ChangeID: c.ChangeId, WorkspaceID: c.WorkspaceId, ProfileID: c.ProfileId,
		Kind: enumName(c.Kind.String(), "CHANGE_KIND_"), CauseMessageID: c.CauseMessageId,
		IdentityTypes: []string{}, IdentityValues: []string{},
		RelatedProfileIDs: append([]string{}, c.RelatedProfileIds...),
		TraitKeys:         []string{}, TraitOldValues: []string{}, TraitNewValues: []string{},
		Detail: c.Detail, TraceID: m.traceID, LoadedAt: m.loadedAt.UTC().Truncate(time.Second), Version: c.Version,
	}
	for _, id := range c.IdentitiesAdded {
		r.IdentityTypes = append(r.IdentityTypes, id.GetType())
		r.IdentityValues = append(r.IdentityValues, id.GetValue())
	}
	for _, t := range c.TraitChanges {
		r.TraitKeys = append(r.TraitKeys, t.GetKey())
		r.TraitOldValues = append(r.TraitOldValues, string(t.GetOldValueJson()))
		r.TraitNewValues = append(r.TraitNewValues, string(t.GetNewValueJson()))
	}
	if c.OccurredAt != nil {
		r.OccurredAt, r.OccurredAtMs = chTime(c.OccurredAt)
	} else {
		r.OccurredAt, r.OccurredAtMs = splitTime(m.msgTime)
	}
	return r, nil
}

// newMembershipRow flattens a Membership.
func newMembershipRow(s *segmentv1.Membership, m meta) (membershipRow, error) {
	switch {
	case s.GetWorkspaceId() == "":
		return membershipRow{}, incomplete("membership has no workspace_id")
	case s.GetMembershipId() == "":
		return membershipRow{}, incomplete("membership has no membership_id")
	case s.GetSegmentId() == "" || s.GetProfileId() == "":
		return membershipRow{}, incomplete("membership %s has no segment_id or profile_id", s.GetMembershipId())
	}
	r := membershipRow{
		MembershipID: s.MembershipId, WorkspaceID: s.WorkspaceId, SegmentID: s.SegmentId,
		SegmentVersion: s.SegmentVersion, ProfileID: s.ProfileId,
		Transition: enumName(s.Transition.String(), "TRANSITION_"), CauseID: s.CauseId,
		TraceID: m.traceID, LoadedAt: m.loadedAt.UTC().Truncate(time.Second),
		Version: unixMilli(s.EvaluatedAt),
	}
	if s.OccurredAt != nil {
		r.OccurredAt, r.OccurredAtMs = chTime(s.OccurredAt)
	} else {
		r.OccurredAt, r.OccurredAtMs = splitTime(m.msgTime)
	}
	r.EvaluatedAt, r.EvaluatedAtMs = chTime(s.EvaluatedAt)
	return r, nil
}
