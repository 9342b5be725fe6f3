package jsonedit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseObjectRoundTrip(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", `{}`, `{}`},
		{"order, number text and escapes kept", `{"b":1.50,"a":12345678901234567890,"\u0065":"\u00e9\n"}`, `{"b":1.50,"a":12345678901234567890,"\u0065":"\u00e9\n"}`},
		{"duplicates kept", `{"a":1,"a":2}`, `{"a":1,"a":2}`},
		{"space between members dropped, inside values kept", " { \"a\" : [ 1 , 2 ] ,\n\"b\":{ \"c\" : null } } ", `{"a":[ 1 , 2 ],"b":{ "c" : null }}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseObject([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(o.AppendTo(nil)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseObjectRejects(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `"x"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":01}`, `{"a":+1}`, `{"a":1.}`,
		`{"a":.5}`, `{"a":1e}`, `{"a":NaN}`, `{"a":Infinity}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		"{\"a\":\"\x01\"}", `{"a":1} {}`, `{"a":[1,]}`, `{"a":[1 2]}`,
		strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1),
	} {
		if _, err := ParseObject([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestRenameAndReplace(t *testing.T) {
	o, err := ParseObject([]byte(`{"First Name":"Ada","n":1,"k\"q":true}`))
	if err != nil {
		t.Fatal(err)
	}
	o.Members[0].Key = "firstName"
	o.Members[1].Value = AppendString(nil, "x\u2028\x00")
	o.Add("new", []byte(`[]`))
	want := `{"firstName":"Ada","n":"x\u2028\u0000","k\"q":true,"new":[]}`
	if got := string(o.AppendTo(nil)); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if !o.Has(`k"q`) || o.Has("First Name") {
		t.Error("Has disagrees with the members")
	}
}

func TestStringValueAndText(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"plain"`, "plain", true},
		{`"a\"b\\c\u00e9\ud83d\ude00"`, "a\"b\\cé😀", true},
		{`"\ud800"`, "\ufffd", true},
		{"\"\xff\"", "\ufffd", true},
		{`12.50`, "12.50", true},
		{`false`, "false", true},
		{`null`, "", false},
		{`{}`, "", false},
	}
	for _, tt := range tests {
		got, ok := Text([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("Text(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIsNull(t *testing.T) {
	for s, want := range map[string]bool{"null": true, " null\n": true, "nul": false, "nonsense": false, "nullx": false, "": false, `"null"`: false} {
		if got := IsNull([]byte(s)); got != want {
			t.Errorf("IsNull(%q) = %v", s, got)
		}
	}
}

func TestIsNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "42": true, "4.2e-3": true, "1E+9": true,
		"": false, "+1": false, "01": false, "1.": false, ".1": false, "0x1A": false, "Inf": false, "1_000": false, " 1": false,
	} {
		if got := IsNumber(s); got != want {
			t.Errorf("IsNumber(%q) = %v", s, got)
		}
	}
}

// FuzzParseObject checks the parser against encoding/json: it accepts exactly
// the objects encoding/json accepts (up to MaxDepth), and what it writes back
// is the same JSON.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":[1,{"b":"\u00e9"}],"a":null}`, `{"a":1e999}`, `{"\ud800":"\udc00x"}`,
		"{\"a\":\"\xff\"}", `{"a":01}`, `[1]`, `{"a":"\u2028"}`, ` {"a" : true } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseObject(b)
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		want := json.Valid(b) && len(trimmed) > 0 && trimmed[0] == '{'
		if err != nil {
			if want && !strings.Contains(err.Error(), "nested deeper") {
				t.Fatalf("rejected valid object %q: %v", b, err)
			}
			return
		}
		if !want {
			t.Fatalf("accepted %q, which encoding/json rejects", b)
		}
		out := o.AppendTo(nil)
		if !json.Valid(out) {
			t.Fatalf("wrote invalid JSON %q", out)
		}
		var a, c bytes.Buffer
		_ = json.Compact(&a, b)
		_ = json.Compact(&c, out)
		if !bytes.Equal(a.Bytes(), c.Bytes()) {
			t.Fatalf("round trip changed the text:\n%s\n%s", a.Bytes(), c.Bytes())
		}
		for i := range o.Members {
			m := &o.Members[i]
			s := m.Key
			m.Key += "x" // force re-encoding of every key
			m.Value = AppendString(nil, s)
		}
		out = o.AppendTo(nil)
		if !json.Valid(out) {
			t.Fatalf("re-encoded keys or strings are invalid JSON: %q", out)
		}
		o2, err := ParseObject(out)
		if err != nil {
			t.Fatal(err)
		}
		for i := range o2.Members {
			if v, _ := StringValue(o2.Members[i].Value); v+"x" != o2.Members[i].Key {
				t.Fatalf("string %q did not survive re-encoding as key %q", v, o2.Members[i].Key)
			}
		}
	})
}
