// Package access is the API's access control: admin keys, the one
// workspace each key may act on, and the scopes it holds. The API
// (services/api) authenticates every request with a Keyring and checks the
// endpoint's scope with Key.Has; the rule lives here, pure, so it is
// table-tested and fuzzed without a server.
//
// # Key syntax
//
// The -admin.keys flag (FP_ADMIN_KEYS) is a comma-separated list of
//
//	<key>=<workspace>[:<scope>+<scope>…]
//
// e.g. "fpa_0123456789abcdef=shop:profiles:read+consent:read". Scopes
// themselves contain a colon, so the workspace ends at the first colon
// (workspace ids never contain one, see pkg/sources) and the scopes are
// separated by "+". A key is at least 16 characters of letters, digits,
// '_' and '-'; it must not look like a write key (fpw_…): write keys belong
// to the collector and never authenticate on the API.
//
// A key without scopes ("key=workspace", the form `make up` writes and the
// only form before scopes existed) holds every scope of its workspace: it
// is the workspace's full admin key. Keeping that meaning keeps existing
// deployments working; scoped keys are how an operator hands out less. The
// scope "*" says the same explicitly.
//
// # Operator keys
//
// The workspace "*" makes an operator key: it acts on the configuration
// of every workspace (the control plane, services/api config.go), and is
// the only kind of key that creates or deletes a workspace. It holds the
// configuration scopes only (ConfigScopes; no scopes or "*" means all of
// them): it never reads a person's data, which stays behind the keys of
// each workspace.
package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Scope is one permission an admin key can hold.
type Scope string

// The scopes. Every API endpoint names the one it needs.
const (
	ProfilesRead  Scope = "profiles:read"  // read profiles, their events, search
	ProfilesWrite Scope = "profiles:write" // unlink
	PIIRead       Scope = "pii:read"       // see personal data unmasked
	PrivacyErase  Scope = "privacy:erase"  // erase a person
	PrivacyExport Scope = "privacy:export" // export everything held about a person
	ConsentRead   Scope = "consent:read"   // read a person's consent
	ConsentWrite  Scope = "consent:write"  // record a person's consent
	AuditRead     Scope = "audit:read"     // read the privacy audit log
	ConfigRead    Scope = "config:read"    // read the workspace's configuration (its write keys too)
	ConfigWrite   Scope = "config:write"   // replace it, apply a file; tracking plans, PII rules, consent policy, destinations
	SourcesWrite  Scope = "sources:write"  // create sources, rotate and revoke write keys
	SegmentsWrite Scope = "segments:write" // create, change and delete segments
)

// All lists every scope, in a stable order.
var All = []Scope{ProfilesRead, ProfilesWrite, PIIRead, PrivacyErase, PrivacyExport, ConsentRead, ConsentWrite, AuditRead,
	ConfigRead, ConfigWrite, SourcesWrite, SegmentsWrite}

// ConfigScopes are the scopes of the control plane, the only ones an
// operator key holds.
var ConfigScopes = []Scope{ConfigRead, ConfigWrite, SourcesWrite, SegmentsWrite}

// AllWorkspaces is the workspace of an operator key.
const AllWorkspaces = "*"

func known(s Scope) bool {
	for _, k := range All {
		if k == s {
			return true
		}
	}
	return false
}

// Key is one admin key's grant.
type Key struct {
	Workspace string
	Scopes    map[Scope]bool
}

// Has reports whether the key holds scope s.
func (k Key) Has(s Scope) bool { return k.Scopes[s] }

// Operator reports whether the key is an operator key (workspace "*").
func (k Key) Operator() bool { return k.Workspace == AllWorkspaces }

// CanAccess reports whether the key may act on workspace ws at all: its
// own, or any for an operator key.
func (k Key) CanAccess(ws string) bool { return k.Operator() || k.Workspace == ws }

// List is the key's scopes in the order of All.
func (k Key) List() []Scope {
	var out []Scope
	for _, s := range All {
		if k.Scopes[s] {
			out = append(out, s)
		}
	}
	return out
}

// Keyring maps admin keys to their grants. It holds only digests of the
// keys, and compares them in constant time.
type Keyring struct {
	keys []entry
}

type entry struct {
	digest [32]byte
	key    Key
}

var (
	keyPattern       = regexp.MustCompile(`^[A-Za-z0-9_-]{16,256}$`)
	workspacePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)
)

// WriteKeyPrefix starts the collector's write keys (pkg/sources).
const WriteKeyPrefix = "fpw_"

// Parse reads the entries of -admin.keys (see the package doc). Errors name
// the entry by position and never repeat the key itself.
func Parse(entries []string) (*Keyring, error) {
	kr := &Keyring{}
	seen := map[[32]byte]int{}
	for i, e := range entries {
		k, grant, err := parseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		d := sha256.Sum256([]byte(k))
		if j, dup := seen[d]; dup {
			return nil, fmt.Errorf("entry %d: the same key as entry %d; a key belongs to one workspace", i+1, j+1)
		}
		seen[d] = i
		kr.keys = append(kr.keys, entry{digest: d, key: grant})
	}
	return kr, nil
}

func parseEntry(e string) (string, Key, error) {
	k, rest, ok := strings.Cut(e, "=")
	if !ok {
		return "", Key{}, fmt.Errorf("missing '='; write <key>=<workspace>[:<scope>+<scope>…]")
	}
	if !keyPattern.MatchString(k) {
		return "", Key{}, fmt.Errorf("the key must be 16-256 letters, digits, '_' or '-'")
	}
	if strings.HasPrefix(k, WriteKeyPrefix) {
		return "", Key{}, fmt.Errorf("the key starts with %q like a write key; admin keys and write keys must differ (use e.g. fpa_…)", WriteKeyPrefix)
	}
	ws, scopes, hasScopes := strings.Cut(rest, ":")
	if ws != AllWorkspaces && !workspacePattern.MatchString(ws) {
		return "", Key{}, fmt.Errorf("workspace %q: use 1-64 letters, digits, '_', '.' or '-' (or * for an operator key)", ws)
	}
	grant := Key{Workspace: ws, Scopes: map[Scope]bool{}}
	if !hasScopes || scopes == "*" {
		all := All
		if grant.Operator() {
			all = ConfigScopes
		}
		for _, s := range all {
			grant.Scopes[s] = true
		}
		return k, grant, nil
	}
	for _, s := range strings.Split(scopes, "+") {
		sc := Scope(strings.TrimSpace(s))
		if !known(sc) {
			return "", Key{}, fmt.Errorf("unknown scope %q; scopes are %s (joined with '+'), or '*' for all", s, names(All))
		}
		if grant.Operator() && !isConfig(sc) {
			return "", Key{}, fmt.Errorf("scope %q: an operator key (workspace *) holds only %s; a person's data needs a key of the workspace", s, names(ConfigScopes))
		}
		grant.Scopes[sc] = true
	}
	return k, grant, nil
}

func isConfig(s Scope) bool {
	for _, c := range ConfigScopes {
		if c == s {
			return true
		}
	}
	return false
}

func names(ss []Scope) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Len is the number of keys.
func (kr *Keyring) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.keys)
}

// Authenticate returns the grant of token. It compares the token's digest
// with every key's in constant time, so timing tells nothing about which
// key, or how much of one, matched.
func (kr *Keyring) Authenticate(token string) (Key, bool) {
	if kr == nil || token == "" {
		return Key{}, false
	}
	d := sha256.Sum256([]byte(token))
	var found Key
	ok := false
	for _, e := range kr.keys {
		if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 {
			found, ok = e.key, true
		}
	}
	return found, ok
}

// Static builds a keyring from grants directly (tests, embedding).
func Static(grants map[string]Key) *Keyring {
	kr := &Keyring{}
	ks := make([]string, 0, len(grants))
	for k := range grants {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		kr.keys = append(kr.keys, entry{digest: sha256.Sum256([]byte(k)), key: grants[k]})
	}
	return kr
}

// Grant is a key of workspace holding scopes.
func Grant(workspace string, scopes ...Scope) Key {
	k := Key{Workspace: workspace, Scopes: map[Scope]bool{}}
	for _, s := range scopes {
		k.Scopes[s] = true
	}
	return k
}

// Full is a key holding every scope of workspace (what "key=workspace"
// means).
func Full(workspace string) Key { return Grant(workspace, All...) }
