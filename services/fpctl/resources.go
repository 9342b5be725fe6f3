package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// resource is a part of a workspace's document that fpctl edits by id:
// segments and webhook destinations (PUT and DELETE
// /v1/workspaces/{ws}/<plural>/{id}; listed from GET /v1/workspaces/{ws}).
type resource struct {
	kind, plural string
	// line is one entry of list for a person.
	line func(m map[string]any) string
}

var resources = map[string]resource{
	"segments": {kind: "segment", plural: "segments", line: func(m map[string]any) string {
		return fmt.Sprintf("%-24s v%-4v %-24s %v", m["id"], m["version"], m["name"], m["condition"])
	}},
	"destinations": {kind: "destination", plural: "destinations", line: func(m map[string]any) string {
		segs := "all segments"
		if list, ok := m["segments"].([]any); ok && len(list) > 0 {
			segs = join(list)
		}
		return fmt.Sprintf("%-24s %-40v %s", m["id"], m["url"], segs)
	}},
}

func join(list []any) string {
	parts := make([]string, len(list))
	for i, p := range list {
		parts[i] = fmt.Sprint(p)
	}
	return strings.Join(parts, ", ")
}

// document is the part of a workspace document (the API's JSON) fpctl
// reads; version is a string there (a 64-bit integer in proto3 JSON).
type document struct {
	ID           string           `json:"id"`
	Version      json.Number      `json:"version"`
	Segments     []map[string]any `json:"segments"`
	Destinations []map[string]any `json:"destinations"`
}

func (d document) list(plural string) []map[string]any {
	if plural == "segments" {
		return d.Segments
	}
	return d.Destinations
}

func decodeDocument(body []byte) (document, error) {
	var d document
	if err := json.Unmarshal(body, &d); err != nil {
		return d, fmt.Errorf("the API answered something other than a workspace document: %v: %.200s", err, body)
	}
	return d, nil
}

// executeResource runs segments … and destinations … .
func executeResource(ctx context.Context, cl *client, c command, out io.Writer) error {
	noun, verb, _ := strings.Cut(c.name, " ")
	r := resources[noun]
	ws := c.args[0]
	base := "/v1/workspaces/" + url.PathEscape(ws)
	switch verb {
	case "list", "get":
		body, err := cl.do(ctx, "GET", base, nil)
		if err != nil {
			return err
		}
		d, err := decodeDocument(body)
		if err != nil {
			return err
		}
		items := d.list(r.plural)
		if verb == "get" {
			for _, m := range items {
				if m["id"] == c.args[1] {
					b, _ := json.Marshal(m)
					return printJSON(out, b)
				}
			}
			return fmt.Errorf("%s %s not found in workspace %s", r.kind, c.args[1], ws)
		}
		if c.json {
			if items == nil {
				items = []map[string]any{}
			}
			b, _ := json.Marshal(items)
			return printJSON(out, b)
		}
		for _, m := range items {
			fmt.Fprintln(out, r.line(m))
		}
		fmt.Fprintf(out, "%d %s in workspace %s (version %s)\n", len(items), r.plural, ws, d.Version)
		return nil
	case "apply":
		items, err := readDefinitions(c.file, r.kind)
		if err != nil {
			return err
		}
		for _, m := range items {
			id := m["id"].(string)
			b, _ := json.Marshal(m)
			body, err := cl.do(ctx, "PUT", base+"/"+r.plural+"/"+url.PathEscape(id), b)
			if err != nil {
				return fmt.Errorf("%s %s: %w", r.kind, id, err)
			}
			d, err := decodeDocument(body)
			if err != nil {
				return err
			}
			if c.json {
				if err := printJSON(out, body); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(out, "%s %s saved (workspace %s now at version %s)\n", r.kind, id, ws, d.Version)
		}
		return nil
	case "delete":
		id := c.args[1]
		body, err := cl.do(ctx, "DELETE", base+"/"+r.plural+"/"+url.PathEscape(id), nil)
		if err != nil {
			return err
		}
		if c.json {
			return printJSON(out, body)
		}
		d, err := decodeDocument(body)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s deleted (workspace %s now at version %s)\n", r.kind, id, ws, d.Version)
		return nil
	}
	return fmt.Errorf("no implementation for %q", c.name)
}

// readDefinitions reads a YAML (or JSON) file holding one definition or a
// list of them, each with an id.
func readDefinitions(file, kind string) ([]map[string]any, error) {
	data, err := readFile(file)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var one map[string]any
	var list []map[string]any
	if err := json.Unmarshal(j, &one); err == nil && one != nil {
		list = []map[string]any{one}
	} else if err := json.Unmarshal(j, &list); err != nil || len(list) == 0 {
		return nil, fmt.Errorf("%s: write one %s (a mapping with an id) or a list of them", file, kind)
	}
	for i, m := range list {
		if id, ok := m["id"].(string); !ok || id == "" {
			return nil, fmt.Errorf("%s: %s %d has no id", file, kind, i+1)
		}
	}
	return list, nil
}

// readFile reads file, or standard input for "-".
func readFile(file string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if file == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return b, nil
}
