package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
)

// apiError is an answer of the API other than 2xx.
type apiError struct {
	status int
	code   string // the gRPC code's name, e.g. NOT_FOUND
	msg    string
	field  string
	scope  string
	// current is the version the workspace is at (a version conflict).
	current string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.msg)
	if e.field != "" {
		s += " (field " + e.field + ")"
	}
	if e.scope != "" {
		s += " (the key needs the scope " + e.scope + ")"
	}
	if e.current != "" && e.current != "0" {
		s += " (current version " + e.current + ")"
	}
	return s
}

// unreachable is a transport failure (exit code 3).
type unreachable struct{ err error }

func (e *unreachable) Error() string { return e.err.Error() }
func (e *unreachable) Unwrap() error { return e.err }

func run(ctx context.Context, argv []string, env func(string) string, stdout, stderr io.Writer) int {
	c, err := parse(argv, env)
	if err != nil {
		fmt.Fprintf(stderr, "fpctl: %v\n", err)
		return exitUsage
	}
	if c.name == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err := execute(ctx, c, stdout); err != nil {
		fmt.Fprintf(stderr, "fpctl %s: %v\n", c.name, err)
		var ae *apiError
		var un *unreachable
		switch {
		case errors.As(err, &ae) && ae.status >= 500, errors.As(err, &un):
			return exitUnreachable
		}
		return exitFailed
	}
	return exitOK
}

func execute(ctx context.Context, c command, out io.Writer) error {
	cl := &client{base: strings.TrimSuffix(c.apiURL, "/"), key: c.key, http: &http.Client{Timeout: 60 * time.Second}}
	ws := func(i int) string { return url.PathEscape(c.args[i]) }
	var (
		body []byte
		err  error
	)
	switch c.name {
	case "tail triggers":
		return tail(ctx, c, out)
	case "segments list", "segments get", "segments apply", "segments delete",
		"destinations list", "destinations apply", "destinations delete":
		return executeResource(ctx, cl, c, out)
	case "apply":
		var file []byte
		if file, err = readFile(c.file); err != nil {
			return err
		}
		path := "/v1/config:apply"
		if c.dryRun {
			path += "?dry_run=true"
		}
		// YAML (JSON is YAML too); the API converts it to the Config message.
		body, err = cl.send(ctx, "POST", path, "application/yaml", file)
	case "workspace get":
		body, err = cl.do(ctx, "GET", "/v1/workspaces/"+ws(0), nil)
	case "sources create":
		req, _ := json.Marshal(map[string]any{"id": c.args[1], "name": c.srcName, "allowed_origins": c.origins})
		body, err = cl.do(ctx, "POST", "/v1/workspaces/"+ws(0)+"/sources", req)
	case "keys rotate":
		req, _ := json.Marshal(map[string]any{"retire": c.retire, "retire_all": c.retireAll})
		body, err = cl.do(ctx, "POST", "/v1/workspaces/"+ws(0)+"/sources/"+ws(1)+"/keys", req)
	case "keys revoke":
		body, err = cl.do(ctx, "DELETE", "/v1/workspaces/"+ws(0)+"/sources/"+ws(1)+"/keys/"+ws(2), nil)
	case "profile get":
		body, err = cl.do(ctx, "GET", "/v1/profiles/"+ws(0), nil)
	case "erase":
		req, _ := json.Marshal(map[string]string{"identifier": c.args[0], "reason": c.reason})
		body, err = cl.do(ctx, "POST", "/v1/privacy/erase", req)
	default:
		return fmt.Errorf("no implementation for %q", c.name)
	}
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, body)
	}
	return summarize(c, body, out)
}

// summarize prints the answer for a person.
func summarize(c command, body []byte, out io.Writer) error {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("the API answered something other than JSON: %.200s", body)
	}
	switch c.name {
	case "apply":
		verb := "applied"
		if c.dryRun {
			verb = "would apply (dry run)"
		}
		changes, _ := m["changes"].([]any)
		for _, ch := range changes {
			x, _ := ch.(map[string]any)
			fmt.Fprintf(out, "%-10s %s", x["action"], x["workspace"])
			if list, ok := x["changes"].([]any); ok && len(list) > 0 {
				parts := make([]string, len(list))
				for i, p := range list {
					parts[i] = fmt.Sprint(p)
				}
				fmt.Fprintf(out, ": %s", strings.Join(parts, ", "))
			}
			fmt.Fprintln(out)
		}
		skipped, _ := m["skipped"].([]any)
		for _, s := range skipped {
			x, _ := s.(map[string]any)
			fmt.Fprintf(out, "%-10s %s: %s\n", "skipped", x["workspace"], x["reason"])
		}
		fmt.Fprintf(out, "%s: %d workspace(s), %d skipped\n", verb, len(changes), len(skipped))
	case "sources create":
		fmt.Fprintf(out, "source %s/%s created\nwrite key: %s\n", c.args[0], c.args[1], m["write_key"])
	case "keys rotate":
		fmt.Fprintf(out, "new write key: %s\nretired: %v, keys now: %v\n", m["write_key"], m["retired"], m["keys"])
	case "keys revoke":
		fmt.Fprintf(out, "revoked; source %s/%s has %v key(s) left\n", c.args[0], c.args[1], m["keys"])
	default:
		return printJSON(out, body)
	}
	return nil
}

func printJSON(out io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		_, err = out.Write(body)
		return err
	}
	buf.WriteByte('\n')
	_, err := out.Write(buf.Bytes())
	return err
}

type client struct {
	base, key string
	http      *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	return c.send(ctx, method, path, "application/json", body)
}

// send is do with the body's content type.
func (c *client) send(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &unreachable{fmt.Errorf("calling %s: %w", c.base, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &unreachable{fmt.Errorf("reading the answer of %s: %w", c.base, err)}
	}
	if resp.StatusCode/100 != 2 {
		// The API's Error body (proto/api/v1 common.proto).
		var e struct {
			Error          string      `json:"error"`
			Code           string      `json:"code"`
			Field          string      `json:"field"`
			Scope          string      `json:"scope"`
			CurrentVersion json.Number `json:"current_version"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, &apiError{status: resp.StatusCode, code: e.Code, msg: e.Error, field: e.Field, scope: e.Scope, current: string(e.CurrentVersion)}
	}
	return b, nil
}
