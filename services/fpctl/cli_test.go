package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	env := map[string]string{"FP_API_URL": "http://127.0.0.1:8090", "FP_ADMIN_KEY": "fpa_env_key_0123456789", "FP_KAFKA_BROKERS": "127.0.0.1:19092"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		argv string
		want command // only the fields set are compared (see below)
		err  string
	}{
		{"", command{name: "help"}, ""},
		{"help", command{name: "help"}, ""},
		{"-h", command{name: "help"}, ""},
		{"apply -f c.yaml", command{name: "apply", file: "c.yaml"}, ""},
		{"apply --dry-run -f c.yaml --json", command{name: "apply", file: "c.yaml", dryRun: true, json: true}, ""},
		{"--json apply -f=c.yaml", command{name: "apply", file: "c.yaml", json: true}, ""},
		{"apply", command{}, "needs -f"},
		{"apply -f c.yaml extra", command{}, "takes 0 argument(s)"},
		{"sources create shop web --name Website --origin https://a.example --origin https://b.example", command{name: "sources create", args: []string{"shop", "web"}, srcName: "Website", origins: []string{"https://a.example", "https://b.example"}}, ""},
		{"sources create shop", command{}, "takes 2 argument(s), got 1"},
		{"sources delete shop web", command{}, `unknown command "sources delete"`},
		{"keys rotate shop web --retire fpw_a --retire fpw_b", command{name: "keys rotate", args: []string{"shop", "web"}, retire: []string{"fpw_a", "fpw_b"}}, ""},
		{"keys rotate shop web --retire-all", command{name: "keys rotate", args: []string{"shop", "web"}, retireAll: true}, ""},
		{"keys rotate shop web --retire fpw_a --retire-all", command{}, "not both"},
		{"keys revoke shop web fpw_a", command{name: "keys revoke", args: []string{"shop", "web", "fpw_a"}}, ""},
		{"profile get user_id:42", command{name: "profile get", args: []string{"user_id:42"}}, ""},
		{"profile get 42", command{}, "not an identifier"},
		{"erase email:a@b.c --reason gdpr", command{name: "erase", args: []string{"email:a@b.c"}, reason: "gdpr"}, ""},
		{"erase email:a@b.c", command{}, "needs --reason"},
		{"tail triggers --workspace shop", command{name: "tail triggers", workspace: "shop", brokers: "127.0.0.1:19092", topic: "cdp.segments.membership"}, ""},
		{"tail triggers --from-beginning --topic t.m --brokers k:9092", command{name: "tail triggers", fromBeginning: true, brokers: "k:9092", topic: "t.m"}, ""},
		{"segments list shop", command{name: "segments list", args: []string{"shop"}}, ""},
		{"segments get shop vip", command{name: "segments get", args: []string{"shop", "vip"}}, ""},
		{"segments apply shop -f vip.yaml", command{name: "segments apply", args: []string{"shop"}, file: "vip.yaml"}, ""},
		{"segments apply shop", command{}, "needs -f"},
		{"segments delete shop", command{}, "takes 2 argument(s), got 1"},
		{"destinations list shop --json", command{name: "destinations list", args: []string{"shop"}, json: true}, ""},
		{"destinations apply shop -f -", command{name: "destinations apply", args: []string{"shop"}, file: "-"}, ""},
		{"destinations delete shop crm", command{name: "destinations delete", args: []string{"shop", "crm"}}, ""},
		{"frobnicate", command{}, `unknown command "frobnicate"`},
		{"apply -f c.yaml --nope", command{}, "flag provided but not defined: -nope"},
		{"apply -f c.yaml --api-url ftp://x", command{}, "use http(s)://host:port"},
		{"apply -f c.yaml --api-url http://api:8090 --admin-key fpa_flag_key_012345678", command{name: "apply", file: "c.yaml", apiURL: "http://api:8090", key: "fpa_flag_key_012345678"}, ""},
	} {
		got, err := parse(strings.Fields(tc.argv), getenv)
		if tc.err != "" {
			if _, ok := err.(*usageError); !ok || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want usage error %q", tc.argv, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.argv, err)
			continue
		}
		want := tc.want
		if want.name != "help" {
			if want.apiURL == "" {
				want.apiURL = env["FP_API_URL"]
			}
			if want.key == "" {
				want.key = env["FP_ADMIN_KEY"]
			}
			if want.brokers == "" {
				want.brokers = env["FP_KAFKA_BROKERS"]
			}
			if want.topic == "" {
				want.topic = "cdp.segments.membership"
			}
			if want.args == nil {
				want.args = []string{}
			}
		}
		if got.args != nil && len(got.args) == 0 {
			got.args = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.argv, got, want)
		}
	}
	// Without the environment, the API's address and key are asked for.
	for argv, want := range map[string]string{"profile get user_id:1": "no API address", "profile get user_id:1 --api-url http://x:1": "no admin key", "tail triggers": "needs Kafka"} {
		if _, err := parse(strings.Fields(argv), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q without env: %v, want %q", argv, err, want)
		}
	}
}

func TestDecodeTrigger(t *testing.T) {
	if _, err := decodeTrigger([]byte{0xff, 0xff}); err == nil {
		t.Error("garbage decoded")
	}
}

// FuzzDecodeTrigger: a message of the membership topic is outside input.
func FuzzDecodeTrigger(f *testing.F) {
	f.Add([]byte{0x0a, 0x01, 0x61, 0x30, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if tr, err := decodeTrigger(b); err == nil {
			_ = tr.line()
		}
	})
}
