package access

import (
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		entry  string
		ws     string
		scopes string // fmt of List()
		err    string
	}{
		{"fpa_0123456789abcdef=demo", "demo", fmt.Sprint(All), ""},
		{"fpa_0123456789abcdef=demo:*", "demo", fmt.Sprint(All), ""},
		{"fpa_0123456789abcdef=shop:profiles:read", "shop", "[profiles:read]", ""},
		{"fpa_0123456789abcdef=shop:pii:read+profiles:read", "shop", "[profiles:read pii:read]", ""},
		{"fpa_0123456789abcdef=shop.eu-1:privacy:erase+ privacy:export", "shop.eu-1", "[privacy:erase privacy:export]", ""},
		{"fpa_0123456789abcdef=shop:config:read+segments:write", "shop", "[config:read segments:write]", ""},
		{"fpa_0123456789abcdef=*", "*", fmt.Sprint(ConfigScopes), ""},
		{"fpa_0123456789abcdef=*:*", "*", fmt.Sprint(ConfigScopes), ""},
		{"fpa_0123456789abcdef=*:config:read", "*", "[config:read]", ""},
		{"fpa_0123456789abcdef=*:profiles:read", "", "", "operator key"},
		{"fpa_0123456789abcdef=s*", "", "", "workspace"},
		{"fpa_0123456789abcdef", "", "", "missing '='"},
		{"short=demo", "", "", "16-256"},
		{"fpa_0123456789abc def=demo", "", "", "16-256"},
		{"fpw_0123456789abcdef=demo", "", "", "write key"},
		{"fpa_0123456789abcdef=", "", "", "workspace"},
		{"fpa_0123456789abcdef=de/mo", "", "", "workspace"},
		{"fpa_0123456789abcdef=demo:", "", "", `unknown scope ""`},
		{"fpa_0123456789abcdef=demo:profiles:reed", "", "", `unknown scope "profiles:reed"`},
		{"fpa_0123456789abcdef=demo:profiles:read+", "", "", `unknown scope ""`},
		{"fpa_0123456789abcdef=demo:profiles:read,x", "", "", `unknown scope`},
	} {
		kr, err := Parse([]string{tt.entry})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v; want %q", tt.entry, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "0123456789abc") {
				t.Errorf("%q: the error repeats the key: %v", tt.entry, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.entry, err)
			continue
		}
		k, _, _ := strings.Cut(tt.entry, "=")
		got, ok := kr.Authenticate(k)
		if !ok || got.Workspace != tt.ws || fmt.Sprint(got.List()) != tt.scopes {
			t.Errorf("%q: %v %+v; want %s %s", tt.entry, ok, got, tt.ws, tt.scopes)
		}
	}
}

func TestCanAccess(t *testing.T) {
	for _, tt := range []struct {
		key      Key
		ws       string
		operator bool
		ok       bool
	}{
		{Full("shop"), "shop", false, true},
		{Full("shop"), "blog", false, false},
		{Full("shop"), "*", false, false},
		{Grant(AllWorkspaces, ConfigRead), "blog", true, true},
	} {
		if got := tt.key.CanAccess(tt.ws); got != tt.ok || tt.key.Operator() != tt.operator {
			t.Errorf("key of %s on %s: %v (operator %v)", tt.key.Workspace, tt.ws, got, tt.key.Operator())
		}
	}
}

func TestParseDuplicateKey(t *testing.T) {
	_, err := Parse([]string{"fpa_0123456789abcdef=a", "fpa_0123456789abcdef=b"})
	if err == nil || !strings.Contains(err.Error(), "entry 2: the same key as entry 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	kr, err := Parse([]string{"fpa_aaaaaaaaaaaaaaaa=a:profiles:read", "fpa_bbbbbbbbbbbbbbbb=b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		token string
		ok    bool
		ws    string
	}{
		{"fpa_aaaaaaaaaaaaaaaa", true, "a"},
		{"fpa_bbbbbbbbbbbbbbbb", true, "b"},
		{"fpa_aaaaaaaaaaaaaaa", false, ""},
		{"fpa_aaaaaaaaaaaaaaaaa", false, ""},
		{"", false, ""},
	} {
		k, ok := kr.Authenticate(tt.token)
		if ok != tt.ok || k.Workspace != tt.ws {
			t.Errorf("%q: %v %q", tt.token, ok, k.Workspace)
		}
	}
	a, _ := kr.Authenticate("fpa_aaaaaaaaaaaaaaaa")
	if !a.Has(ProfilesRead) || a.Has(PIIRead) {
		t.Errorf("scopes of a: %v", a.List())
	}
	var none *Keyring
	if _, ok := none.Authenticate("fpa_aaaaaaaaaaaaaaaa"); ok || none.Len() != 0 {
		t.Error("a nil keyring authenticates")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"fpa_0123456789abcdef=demo", "fpa_0123456789abcdef=demo:profiles:read+pii:read", "k=w:*", "=:", "fpa_0123456789abcdef=a:b:c+d", "fpw_0123456789abcdef=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kr, err := Parse([]string{s})
		if err != nil {
			return
		}
		k, _, _ := strings.Cut(s, "=")
		got, ok := kr.Authenticate(k)
		if !ok {
			t.Fatalf("%q parsed but its key does not authenticate", s)
		}
		if !workspacePattern.MatchString(got.Workspace) || strings.Contains(got.Workspace, ":") {
			t.Fatalf("%q: workspace %q", s, got.Workspace)
		}
		if len(got.List()) == 0 {
			t.Fatalf("%q: a key with no scope", s)
		}
		for sc := range got.Scopes {
			if !known(sc) {
				t.Fatalf("%q: unknown scope %q accepted", s, sc)
			}
		}
		if strings.HasPrefix(k, WriteKeyPrefix) {
			t.Fatalf("%q: a write key accepted", s)
		}
	})
}
