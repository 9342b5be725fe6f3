package proto_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// protocVersionLine is the one line of generated code that depends on the
// system protoc rather than on the generators pinned in go.mod; a different
// Debian point release must not make the check fail.
var protocVersionLine = regexp.MustCompile(`(?m)^//\s+protoc\s+.*$`)

// TestGeneratedCodeIsFresh regenerates every .proto into a temporary
// directory and fails when the committed Go code differs: a .proto changed
// without `make proto`, or generated code was edited by hand.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatal("protoc not found; install it with `make deps` (apt-get install protobuf-compiler libprotobuf-dev)")
	}
	tmp := t.TempDir()
	cmd := exec.Command("bash", "generate.sh", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, out)
	}

	generated := map[string]bool{}
	err := filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tmp, path)
		generated[rel] = true
		want, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(rel)
		if err != nil {
			t.Errorf("%s is not committed; run `make proto`", rel)
			return nil
		}
		if !bytes.Equal(normalize(got), normalize(want)) {
			t.Errorf("%s is stale; run `make proto` and commit the result", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A .pb.go whose .proto was deleted is stale too.
	_ = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".pb.go") && !generated[path] {
			t.Errorf("%s has no .proto any more; delete it", path)
		}
		return nil
	})
}

func normalize(b []byte) []byte { return protocVersionLine.ReplaceAll(b, nil) }
