package history

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/firstparty/firstparty/pkg/testinfra"
)

// The raw payloads of rejected_events as SDKs send them, before
// standardisation, and whether Where must find them for the person below.
var rawCases = []struct {
	raw  string
	want bool
}{
	{`{"traits":{"email":"ann@x.io"}}`, true},
	{`{"traits":{"email":"Ann@X.io"}}`, true}, // stored before standardize lowercased it
	{`{"traits":{"email":"ANN@X.IO"}}`, true},
	{`{"properties":{"phone":"004915112345678"}}`, true},
	{`{"traits":{"email":"joann@x.io"}}`, false},
	{`{"traits":{"email":"bob@x.io"}}`, false},
}

var rawPerson = Person{Workspace: "shop", Identifiers: [][2]string{{"email", "ann@x.io"}, {"phone", "+4915112345678"}}}

// TestRejectionMatchOnClickHouse runs Where's rejected_events predicate on
// Debian's ClickHouse 18.16 and on a current engine (chDB): a payload
// spelling the email in another case is found on both.
func TestRejectionMatchOnClickHouse(t *testing.T) {
	ddl := func(db string) string {
		return "CREATE TABLE " + db + ".rejected_events (workspace_id String, user_id String, anonymous_id String, raw String) ENGINE = MergeTree ORDER BY workspace_id"
	}
	var values []string
	for _, c := range rawCases {
		values = append(values, fmt.Sprintf("('shop', '', '', %s)", Quote(c.raw)))
	}
	insert := func(db string) string {
		return "INSERT INTO " + db + ".rejected_events VALUES " + strings.Join(values, ",")
	}
	var queries []string
	for _, c := range rawCases {
		queries = append(queries, fmt.Sprintf("SELECT count() FROM fp.rejected_events WHERE %s AND raw = %s", Where("rejected_events", rawPerson), Quote(c.raw)))
	}
	check := func(engine string, got []string) {
		t.Helper()
		for i, c := range rawCases {
			if want := map[bool]string{true: "1", false: "0"}[c.want]; strings.TrimSpace(got[i]) != want {
				t.Errorf("%s: %s matched %s, want %s", engine, c.raw, got[i], want)
			}
		}
	}

	t.Run("18.16", func(t *testing.T) {
		base := testinfra.ClickHouseHTTP(t)
		run := func(q string) string {
			t.Helper()
			resp, err := http.Post(base+"/", "text/plain", strings.NewReader(q))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", q, resp.StatusCode, b)
			}
			return string(b)
		}
		db := strings.NewReplacer("-", "_", ".", "_").Replace(testinfra.Unique(t))
		run("CREATE DATABASE " + db)
		defer run("DROP DATABASE " + db)
		run(ddl(db))
		run(insert(db))
		var got []string
		for _, q := range queries {
			got = append(got, run(strings.Replace(q, "fp.", db+".", 1)))
		}
		check("ClickHouse 18.16", got)
	})
	t.Run("current", func(t *testing.T) {
		out, errs := testinfra.CurrentClickHouse(t).Query(t, []string{"CREATE DATABASE fp", ddl("fp"), insert("fp")}, queries)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", queries[i], err)
			}
		}
		check("current ClickHouse", out)
	})
}
