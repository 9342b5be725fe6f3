// Package sources is the declarative workspace configuration: which write
// key belongs to which workspace and source, what each source may do
// (origins, rate), and how the validator treats its events (tracking plan,
// phone region, PII rules, the workspace's consent policy). The collector
// looks every request up here; the validator every event.
//
// It is data: a YAML (or JSON) file, reloaded when it changes, so a key can
// be rotated or revoked and a plan changed without a restart:
//
//	workspaces:
//	  - id: demo
//	    consent: {required: [analytics]}     # fail closed: events without it are refused
//	    pii_secret_env: FP_DEMO_PII_SECRET   # HMAC key for "hash" rules, from the environment
//	    sources:
//	      - id: web
//	        write_keys: [fpw_1f0c…]          # several keys allow rotation
//	        allowed_origins: ["https://shop.example"]   # empty: any origin
//	        rate_limit: {events_per_second: 5000, burst: 10000}
//	        disabled: false                  # true revokes every key of the source
//	        default_region: DE               # phone numbers without +country
//	        pii: [{path: traits.email, action: hash}, {path: context.ip, action: mask}]
//	        tracking_plan:                   # see pkg/trackingplan
//	          id: shop-web
//	          version: 1
//	          violations: block
//	          unplanned: allow
//	          events: {"Order Completed": {properties: {type: object, required: [order_id]}}}
//	    segments:                            # see pkg/segments; compiled on load
//	      - id: big-spenders
//	        version: 1
//	        name: Big spenders
//	        condition: revenue_90d >= 500.0
//	        aggregates: {revenue_90d: {sum: {event: "Order Completed", property: revenue, within: 90d}}}
//	    identity:                            # merge protection, see pkg/identity (default: Segment's)
//	      limits: {user_id: 1, email: 2}
//	      default_limit: 5
//	      priorities: [user_id, email, phone, anonymous_id]
//	      blocked_values: ["test@example.com"]
//	    destinations:                        # webhooks for segment transitions, see pkg/webhook
//	      - {id: crm, url: "https://crm.example/hook", secret_env: FP_CRM_SECRET, segments: [big-spenders]}
package sources

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/standardize"
	"github.com/firstparty/firstparty/pkg/trackingplan"
	"github.com/firstparty/firstparty/pkg/webhook"
)

// Config is the file's content.
type Config struct {
	Workspaces []Workspace `json:"workspaces"`
}

type Workspace struct {
	ID      string         `json:"id"`
	Name    string         `json:"name,omitempty"`
	Consent consent.Policy `json:"consent,omitempty"`
	// PIISecretEnv names the environment variable holding the workspace's
	// HMAC secret; the secret itself never sits in the file.
	PIISecretEnv string   `json:"pii_secret_env,omitempty"`
	Sources      []Source `json:"sources"`
	// Segments are the workspace's audiences (see pkg/segments for the
	// language), compiled and checked on load.
	Segments []segments.Definition `json:"segments,omitempty"`
	// Destinations are webhook endpoints for segment transitions (see
	// pkg/webhook); their signing secrets come from the environment.
	Destinations []webhook.Destination `json:"destinations,omitempty"`
	// Identity is the workspace's merge protection (see pkg/identity);
	// absent, Segment's defaults: one user_id, five of every other type.
	Identity *IdentitySettings `json:"identity,omitempty"`
}

// IdentitySettings is a workspace's identity-resolution policy.
type IdentitySettings struct {
	// Limits of identifiers per type on one profile (1..50); types not
	// named keep Segment's defaults: user_id 1, others DefaultLimit.
	Limits       map[string]int `json:"limits,omitempty"`
	DefaultLimit int            `json:"default_limit,omitempty"`
	// Priorities: identifier types from most to least trusted.
	Priorities []string `json:"priorities,omitempty"`
	// BlockedValues are never identifiers (e.g. a test account's email).
	BlockedValues []string `json:"blocked_values,omitempty"`
}

type Source struct {
	ID             string     `json:"id"`
	Name           string     `json:"name,omitempty"`
	WriteKeys      []string   `json:"write_keys"`
	AllowedOrigins []string   `json:"allowed_origins,omitempty"`
	RateLimit      *RateLimit `json:"rate_limit,omitempty"`
	Disabled       bool       `json:"disabled,omitempty"`
	// Validator settings.
	DefaultRegion string          `json:"default_region,omitempty"`
	PII           []pii.Rule      `json:"pii,omitempty"`
	TrackingPlan  json.RawMessage `json:"tracking_plan,omitempty"`
}

type RateLimit struct {
	EventsPerSecond float64 `json:"events_per_second"`
	Burst           int     `json:"burst"`
}

// Resolved is one source's effective settings, compiled.
type Resolved struct {
	WorkspaceID string
	SourceID    string
	// Origins the source accepts browser requests from; empty means any.
	AllowedOrigins []string
	RateLimit      *RateLimit
	// For the validator.
	Standardize standardize.Options
	PII         pii.Policy
	PIISecret   []byte
	Consent     consent.Policy
	Plan        *trackingplan.Plan // nil: no tracking plan
}

// AllowsOrigin reports whether a browser request from origin may write to the
// source. Requests without an Origin header (servers) are always allowed.
func (r *Resolved) AllowsOrigin(origin string) bool {
	if origin == "" || len(r.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range r.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// Registry maps write keys to sources. It is immutable; reloads build a new one.
type Registry struct {
	// keyed by SHA-256 of the write key, so the map never holds the keys
	// themselves and lookups do not compare secrets byte by byte.
	byKey    map[[32]byte]*Resolved
	bySource map[[2]string]*Resolved // every defined source, enabled or not
	count    int
	// workspaces in file order, and their compiled segments.
	workspaces   []string
	segments     map[string][]*segments.Segment
	destinations map[string][]*webhook.Compiled
	identity     map[string]*identity.Config
}

// Identity returns a workspace's identity-resolution policy, or nil for
// the defaults.
func (r *Registry) Identity(workspace string) *identity.Config {
	if r == nil {
		return nil
	}
	return r.identity[workspace]
}

// Destinations returns a workspace's webhook destinations.
func (r *Registry) Destinations(workspace string) []*webhook.Compiled {
	if r == nil {
		return nil
	}
	return r.destinations[workspace]
}

// Workspaces lists the workspace ids, in the file's order.
func (r *Registry) Workspaces() []string {
	if r == nil {
		return nil
	}
	return r.workspaces
}

// Segments returns a workspace's compiled segments, in the file's order.
func (r *Registry) Segments(workspace string) []*segments.Segment {
	if r == nil {
		return nil
	}
	return r.segments[workspace]
}

// PIIRules returns the PII rules of every source of a workspace, in the
// order of the source ids (the API masks every path they name for readers
// without pii:read, see pii.Redaction).
func (r *Registry) PIIRules(workspace string) []pii.Rule {
	if r == nil {
		return nil
	}
	var ids []string
	for k := range r.bySource {
		if k[0] == workspace {
			ids = append(ids, k[1])
		}
	}
	sort.Strings(ids)
	var out []pii.Rule
	for _, id := range ids {
		out = append(out, r.bySource[[2]string{workspace, id}].PII.Rules...)
	}
	return out
}

// Source returns the settings of a source by id; the validator uses it for
// events already accepted, so a source disabled since still resolves.
func (r *Registry) Source(workspace, source string) (*Resolved, bool) {
	if r == nil {
		return nil, false
	}
	res, ok := r.bySource[[2]string{workspace, source}]
	return res, ok
}

// Lookup returns the source a write key belongs to.
func (r *Registry) Lookup(writeKey string) (*Resolved, bool) {
	if r == nil || writeKey == "" {
		return nil, false
	}
	res, ok := r.byKey[sha256.Sum256([]byte(writeKey))]
	return res, ok
}

// Sources is the number of enabled sources.
func (r *Registry) Sources() int { return r.count }

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// Parse builds a registry from the file's bytes, checking everything:
// ids, key length, duplicates across sources, rate limits.
func Parse(data []byte) (*Registry, error) {
	c, err := ParseConfig(data)
	if err != nil {
		return nil, err
	}
	return Build(c)
}

// ParseConfig reads the file's bytes (YAML or JSON) without building them:
// unknown fields are errors.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("parsing sources: %w", err)
	}
	return c, nil
}

// Build checks c and builds its registry.
func Build(c Config) (*Registry, error) {
	return BuildWithEnv(c, os.LookupEnv)
}

// BuildWithEnv is Build with an explicit environment for secrets.
func BuildWithEnv(c Config, lookupEnv func(string) (string, bool)) (*Registry, error) {
	reg := &Registry{byKey: map[[32]byte]*Resolved{}, bySource: map[[2]string]*Resolved{}, segments: map[string][]*segments.Segment{}, destinations: map[string][]*webhook.Compiled{}, identity: map[string]*identity.Config{}}
	var errs []error
	owner := map[[32]byte][2]string{} // workspace, source
	seenWS := map[string]bool{}
	for wi, ws := range c.Workspaces {
		if !idPattern.MatchString(ws.ID) {
			errs = append(errs, fmt.Errorf("workspaces[%d].id %q: use 1-64 letters, digits, '_', '.' or '-'", wi, ws.ID))
			continue
		}
		if seenWS[ws.ID] {
			errs = append(errs, fmt.Errorf("workspace %q is defined twice", ws.ID))
		}
		seenWS[ws.ID] = true
		reg.workspaces = append(reg.workspaces, ws.ID)
		seenSeg := map[string]bool{}
		for gi, def := range ws.Segments {
			seg, err := segments.CompileDefinition(def)
			if err != nil {
				errs = append(errs, fmt.Errorf("workspace %q segments[%d] (%s): %w", ws.ID, gi, def.ID, err))
				continue
			}
			if seenSeg[seg.ID] {
				errs = append(errs, fmt.Errorf("workspace %q: segment %q is defined twice", ws.ID, seg.ID))
				continue
			}
			seenSeg[seg.ID] = true
			reg.segments[ws.ID] = append(reg.segments[ws.ID], seg)
		}
		if is := ws.Identity; is != nil {
			// Limits not named keep Segment's defaults (one user_id).
			cfg := identity.DefaultConfig()
			if is.DefaultLimit != 0 {
				cfg.DefaultLimit = is.DefaultLimit
			}
			for t, n := range is.Limits {
				cfg.Limits[t] = n
			}
			cfg.Priorities, cfg.Blocked = is.Priorities, is.BlockedValues
			if err := cfg.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("workspace %q identity: %w", ws.ID, err))
			}
			reg.identity[ws.ID] = &cfg
		}
		seenDest := map[string]bool{}
		for di, d := range ws.Destinations {
			c, err := webhook.Compile(d, lookupEnv)
			if err != nil {
				errs = append(errs, fmt.Errorf("workspace %q destinations[%d]: %w", ws.ID, di, err))
				continue
			}
			if seenDest[c.ID] {
				errs = append(errs, fmt.Errorf("workspace %q: destination %q is defined twice", ws.ID, c.ID))
				continue
			}
			seenDest[c.ID] = true
			for _, sid := range c.Segments {
				if !seenSeg[sid] {
					errs = append(errs, fmt.Errorf("workspace %q destination %q: segment %q is not defined", ws.ID, c.ID, sid))
				}
			}
			reg.destinations[ws.ID] = append(reg.destinations[ws.ID], c)
		}
		if err := ws.Consent.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("workspace %q consent: %w", ws.ID, err))
		}
		var secret []byte
		if ws.PIISecretEnv != "" {
			v, ok := lookupEnv(ws.PIISecretEnv)
			if !ok || len(v) < 16 {
				errs = append(errs, fmt.Errorf("workspace %q: pii_secret_env %s must name an environment variable holding at least 16 characters", ws.ID, ws.PIISecretEnv))
			}
			secret = []byte(v)
		}
		seenSrc := map[string]bool{}
		for si, src := range ws.Sources {
			where := fmt.Sprintf("workspace %q source %q", ws.ID, src.ID)
			if !idPattern.MatchString(src.ID) {
				errs = append(errs, fmt.Errorf("workspaces[%d].sources[%d].id %q: use 1-64 letters, digits, '_', '.' or '-'", wi, si, src.ID))
				continue
			}
			if seenSrc[src.ID] {
				errs = append(errs, fmt.Errorf("%s is defined twice", where))
			}
			seenSrc[src.ID] = true
			if rl := src.RateLimit; rl != nil && (rl.EventsPerSecond <= 0 || rl.Burst < 1) {
				errs = append(errs, fmt.Errorf("%s: rate_limit needs events_per_second > 0 and burst >= 1", where))
			}
			for _, o := range src.AllowedOrigins {
				if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
					errs = append(errs, fmt.Errorf("%s: allowed origin %q must be * or start with http:// or https://", where, o))
				}
			}
			res := &Resolved{
				WorkspaceID: ws.ID, SourceID: src.ID, AllowedOrigins: src.AllowedOrigins, RateLimit: src.RateLimit,
				Standardize: standardize.Options{DefaultRegion: src.DefaultRegion},
				PII:         pii.Policy{Rules: src.PII}, PIISecret: secret, Consent: ws.Consent,
			}
			if err := res.Standardize.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
			if err := res.PII.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: pii: %w", where, err))
			}
			if hasHash(src.PII) && len(secret) == 0 {
				errs = append(errs, fmt.Errorf("%s: pii rules hash values but workspace %q has no pii_secret_env", where, ws.ID))
			}
			if len(src.TrackingPlan) > 0 && string(src.TrackingPlan) != "null" {
				plan, err := trackingplan.Compile(src.TrackingPlan)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: tracking_plan: %w", where, err))
				}
				res.Plan = plan
			}
			reg.bySource[[2]string{ws.ID, src.ID}] = res
			if src.Disabled {
				continue
			}
			for _, k := range src.WriteKeys {
				if len(k) < 16 {
					errs = append(errs, fmt.Errorf("%s: a write key must have at least 16 characters", where))
					continue
				}
				h := sha256.Sum256([]byte(k))
				if prev, dup := owner[h]; dup {
					errs = append(errs, &DuplicateKeyError{Workspace: ws.ID, Source: src.ID, OwnerWorkspace: prev[0], OwnerSource: prev[1]})
					continue
				}
				owner[h] = [2]string{ws.ID, src.ID}
				reg.byKey[h] = res
			}
			reg.count++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return reg, nil
}

// DuplicateKeyError is a write key used by two sources. Its message names
// both (the file's author may see every workspace); Public is the message
// for someone who may see only one workspace.
type DuplicateKeyError struct {
	Workspace, Source           string // the source being checked
	OwnerWorkspace, OwnerSource string // the source that already holds the key
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("workspace %q source %q: a write key is also used by workspace %q source %q", e.Workspace, e.Source, e.OwnerWorkspace, e.OwnerSource)
}

// Public names only the source of workspace ws (which of the two it is).
func (e *DuplicateKeyError) Public(ws string) string {
	switch ws {
	case e.Workspace:
		return fmt.Sprintf("workspace %q source %q: this write key is already in use", e.Workspace, e.Source)
	case e.OwnerWorkspace:
		return fmt.Sprintf("workspace %q source %q: this write key is already in use", e.OwnerWorkspace, e.OwnerSource)
	}
	return "this write key is already in use"
}

// PublicMessage is err's message with every DuplicateKeyError in it told
// as Public(ws): for a caller who may see workspace ws only, and may not
// learn which other workspace or source holds a key.
func PublicMessage(err error, ws string) string {
	msg := err.Error()
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case *DuplicateKeyError:
			msg = strings.ReplaceAll(msg, x.Error(), x.Public(ws))
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return msg
}

func hasHash(rules []pii.Rule) bool {
	for _, r := range rules {
		if r.Action == pii.Hash {
			return true
		}
	}
	return false
}

// Load reads and parses a sources file.
func Load(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading sources: %w", err)
	}
	reg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reg, nil
}
