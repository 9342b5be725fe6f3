package segments

import (
	"embed"
	"path"
	"sort"
	"strings"
)

//go:embed templates/*.yaml
var templateFS embed.FS

// Templates returns the lifecycle segments shipped ready to use (registered,
// first purchase, active, churning, dormant), keyed by file name without
// extension, as YAML definitions to Compile or to copy and edit.
func Templates() map[string][]byte {
	entries, _ := templateFS.ReadDir("templates")
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := templateFS.ReadFile(path.Join("templates", e.Name()))
		if err != nil {
			continue
		}
		out[strings.TrimSuffix(e.Name(), ".yaml")] = b
	}
	return out
}

// TemplateNames returns the names of Templates, sorted.
func TemplateNames() []string {
	t := Templates()
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
