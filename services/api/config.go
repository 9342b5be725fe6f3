package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/trackingplan"
	"github.com/firstparty/firstparty/pkg/webhook"
)

// configAPI is the control plane (pkg/controlplane): the workspaces'
// configuration, written to the config topic and in force at every
// service within seconds.
//
//	GET    /v1/workspaces                                  config:read    the workspaces the key may see
//	GET    /v1/workspaces/{ws}                             config:read    the document (with its version)
//	PUT    /v1/workspaces/{ws}                             config:write   replace it; "version" is the one replaced (0: create, operator key only)
//	DELETE /v1/workspaces/{ws}?version=                    config:write   operator key only
//	POST   /v1/workspaces/{ws}/sources                     sources:write  {"id", …}: a new source with a generated write key
//	DELETE /v1/workspaces/{ws}/sources/{id}                sources:write
//	POST   /v1/workspaces/{ws}/sources/{id}/keys           sources:write  rotate: a new key; {"retire": [keys]} or {"retire_all": true} drops old ones
//	DELETE /v1/workspaces/{ws}/sources/{id}/keys/{key}     sources:write  revoke
//	PUT    /v1/workspaces/{ws}/sources/{id}/tracking-plan  config:write   (DELETE removes it)
//	PUT    /v1/workspaces/{ws}/sources/{id}/pii            config:write   [{"path", "action"}]
//	PUT    /v1/workspaces/{ws}/consent                     config:write   {"required": [categories]}
//	PUT    /v1/workspaces/{ws}/segments/{id}               segments:write compiled on save (DELETE removes it)
//	PUT    /v1/workspaces/{ws}/destinations/{id}           config:write   webhook destination (DELETE removes it)
//	POST   /v1/config:apply[?dry_run=true]                 config:write   a whole YAML file (GitOps)
//
// Isolation: a key of workspace A gets 404 for workspace B, exactly as for
// a workspace that does not exist. Only an operator key (workspace "*",
// pkg/access) creates and deletes workspaces. Errors: 400 with the
// message of the check that failed (and "field" where one is at fault),
// 409 with "current_version" on a version conflict.
type configAPI struct {
	auth  *auth
	store *controlplane.Store // nil: the configuration comes from a file
	// destinations is where a workspace key's destinations may send
	// (controlplane.CheckTenantEdit); operator keys are not checked.
	destinations webhook.URLPolicy
	log          *slog.Logger // nil: nothing logged
}

func (c *configAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/workspaces", c.list)
	mux.HandleFunc("GET /v1/workspaces/{ws}", c.get)
	mux.HandleFunc("PUT /v1/workspaces/{ws}", c.put)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}", c.delete)
	mux.HandleFunc("POST /v1/workspaces/{ws}/sources", c.createSource)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}/sources/{id}", c.deleteSource)
	mux.HandleFunc("POST /v1/workspaces/{ws}/sources/{id}/keys", c.rotateKey)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}/sources/{id}/keys/{key}", c.revokeKey)
	mux.HandleFunc("PUT /v1/workspaces/{ws}/sources/{id}/tracking-plan", c.putPlan)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}/sources/{id}/tracking-plan", c.putPlan)
	mux.HandleFunc("PUT /v1/workspaces/{ws}/sources/{id}/pii", c.putPII)
	mux.HandleFunc("PUT /v1/workspaces/{ws}/consent", c.putConsent)
	mux.HandleFunc("PUT /v1/workspaces/{ws}/segments/{id}", c.putSegment)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}/segments/{id}", c.deleteSegment)
	mux.HandleFunc("PUT /v1/workspaces/{ws}/destinations/{id}", c.putDestination)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}/destinations/{id}", c.deleteDestination)
	mux.HandleFunc("POST /v1/config:apply", c.apply)
}

// authorize checks the scope and that the key may act on the workspace of
// the path; another workspace is "not found".
func (c *configAPI) authorize(w http.ResponseWriter, r *http.Request, scope access.Scope) (access.Key, string, bool) {
	key, ok := c.auth.authorizeHTTP(w, r, scope)
	if !ok {
		return key, "", false
	}
	if c.store == nil {
		writeError(w, http.StatusServiceUnavailable, "the control plane is off: this API reads its configuration from a file; start it with -config.source=topic")
		return key, "", false
	}
	ws := r.PathValue("ws")
	if ws != "" && !key.CanAccess(ws) {
		writeError(w, http.StatusNotFound, "workspace "+ws+" not found")
		return key, "", false
	}
	return key, ws, true
}

func by(k access.Key) string { return "api key of " + k.Workspace }

func (c *configAPI) list(w http.ResponseWriter, r *http.Request) {
	key, _, ok := c.authorize(w, r, access.ConfigRead)
	if !ok {
		return
	}
	out := []controlplane.Document{}
	for _, d := range c.store.Documents() {
		if key.CanAccess(d.ID) {
			out = append(out, d)
		}
	}
	writeJSON(w, map[string]any{"workspaces": out})
}

func (c *configAPI) get(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := c.authorize(w, r, access.ConfigRead)
	if !ok {
		return
	}
	d, found := c.store.Get(ws)
	if !found {
		writeError(w, http.StatusNotFound, "workspace "+ws+" not found")
		return
	}
	writeJSON(w, d)
}

func (c *configAPI) put(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	d, err := controlplane.DecodeStrict(http.MaxBytesReader(w, r.Body, maxConfigBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "send the workspace document as JSON (the fields of one entry of workspaces: in the YAML file, plus \"version\": the version it replaces, 0 to create): "+err.Error())
		return
	}
	if d.ID == "" {
		d.ID = ws
	}
	if d.ID != ws {
		writeFieldError(w, http.StatusBadRequest, fmt.Sprintf("the document's id %q is not the workspace of the path %q", d.ID, ws), "id")
		return
	}
	cur, exists := c.store.Get(ws)
	if !exists && !key.Operator() {
		writeError(w, http.StatusForbidden, "workspace "+ws+" does not exist, and creating a workspace needs an operator key (workspace *)")
		return
	}
	if err := c.checkEdit(r, key, &cur.Workspace, d.Workspace); err != nil {
		c.writeStoreError(w, key, err)
		return
	}
	doc, err := c.store.Put(r.Context(), d.Workspace, d.Version, by(key))
	if err != nil {
		c.writeStoreError(w, key, err)
		return
	}
	if doc.Version == 1 {
		w.WriteHeader(http.StatusCreated)
	}
	writeJSON(w, doc)
}

func (c *configAPI) delete(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	if !key.Operator() {
		writeError(w, http.StatusForbidden, "deleting a workspace needs an operator key (workspace *)")
		return
	}
	expected := int64(-1)
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeFieldError(w, http.StatusBadRequest, "version must be the workspace's current version (1 or more)", "version")
			return
		}
		expected = n
	}
	if err := c.store.Delete(r.Context(), ws, expected); err != nil {
		c.writeStoreError(w, key, err)
		return
	}
	writeJSON(w, map[string]any{"deleted": ws})
}

// badRequest is an edit refused before writing: 400 naming the field.
type badRequest struct{ msg, field string }

func (e *badRequest) Error() string { return e.msg }

// notFound is a part of the workspace that does not exist.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

// conflict is an edit that clashes with what exists (a source id taken).
type conflict struct{ msg string }

func (e *conflict) Error() string { return e.msg }

// update changes one part of a workspace (read, change, write; read again
// on a version conflict) and answers the new document, or extra. The
// caller authorized key for ws first (before reading the body).
func (c *configAPI) update(w http.ResponseWriter, r *http.Request, key access.Key, ws string, status int, fn func(*sources.Workspace) (any, error)) {
	var extra any
	doc, err := c.store.Update(r.Context(), ws, by(key), func(wsp *sources.Workspace) error {
		old := *wsp
		old.Destinations = slices.Clone(wsp.Destinations)
		var err error
		if extra, err = fn(wsp); err != nil {
			return err
		}
		return c.checkEdit(r, key, &old, *wsp)
	})
	if err != nil {
		c.writeStoreError(w, key, err)
		return
	}
	if extra == nil {
		extra = doc
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
	}
	writeJSON(w, extra)
}

// checkEdit applies controlplane.CheckTenantEdit to a workspace key's
// edit; an operator key may edit anything.
func (c *configAPI) checkEdit(r *http.Request, key access.Key, old *sources.Workspace, w sources.Workspace) error {
	if key.Operator() {
		return nil
	}
	return controlplane.CheckTenantEdit(r.Context(), old, w, c.destinations)
}

func source(wsp *sources.Workspace, id string) (*sources.Source, error) {
	for i := range wsp.Sources {
		if wsp.Sources[i].ID == id {
			return &wsp.Sources[i], nil
		}
	}
	return nil, &notFound{"source " + id + " not found in workspace " + wsp.ID}
}

func (c *configAPI) createSource(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.SourcesWrite)
	if !ok {
		return
	}
	var src sources.Source
	if err := decode(w, r, &src, maxConfigBody); err != nil {
		writeError(w, http.StatusBadRequest, `send the source as JSON, e.g. {"id": "web", "name": "Website", "allowed_origins": ["https://shop.example"]}: `+err.Error())
		return
	}
	if len(src.WriteKeys) > 0 {
		writeFieldError(w, http.StatusBadRequest, "write keys are generated: leave write_keys out (rotate with POST …/sources/{id}/keys)", "write_keys")
		return
	}
	if src.ID == "" {
		writeFieldError(w, http.StatusBadRequest, `the source needs an "id"`, "id")
		return
	}
	c.update(w, r, key, ws, http.StatusCreated, func(wsp *sources.Workspace) (any, error) {
		if _, err := source(wsp, src.ID); err == nil {
			return nil, &conflict{"source " + src.ID + " already exists in workspace " + wsp.ID}
		}
		s := src
		s.WriteKeys = []string{controlplane.NewWriteKey()}
		wsp.Sources = append(wsp.Sources, s)
		return map[string]any{"workspace": wsp.ID, "source": s, "write_key": s.WriteKeys[0]}, nil
	})
}

func (c *configAPI) deleteSource(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.SourcesWrite)
	if !ok {
		return
	}
	id := r.PathValue("id")
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		if _, err := source(wsp, id); err != nil {
			return nil, err
		}
		wsp.Sources = slices.DeleteFunc(wsp.Sources, func(s sources.Source) bool { return s.ID == id })
		return nil, nil
	})
}

func (c *configAPI) rotateKey(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.SourcesWrite)
	if !ok {
		return
	}
	var body struct {
		Retire    []string `json:"retire"`
		RetireAll bool     `json:"retire_all"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &body, 64<<10); err != nil {
			writeError(w, http.StatusBadRequest, `send {} or {"retire": ["<old key>", …]} or {"retire_all": true}: `+err.Error())
			return
		}
	}
	id := r.PathValue("id")
	c.update(w, r, key, ws, http.StatusCreated, func(wsp *sources.Workspace) (any, error) {
		src, err := source(wsp, id)
		if err != nil {
			return nil, err
		}
		for _, k := range body.Retire {
			if !slices.Contains(src.WriteKeys, k) {
				return nil, &badRequest{"a key to retire is not a key of source " + id, "retire"}
			}
		}
		retired := len(body.Retire)
		if body.RetireAll {
			retired = len(src.WriteKeys)
			src.WriteKeys = nil
		}
		src.WriteKeys = slices.DeleteFunc(src.WriteKeys, func(k string) bool { return slices.Contains(body.Retire, k) })
		key := controlplane.NewWriteKey()
		src.WriteKeys = append(src.WriteKeys, key)
		return map[string]any{"workspace": wsp.ID, "source": id, "write_key": key, "retired": retired, "keys": len(src.WriteKeys)}, nil
	})
}

func (c *configAPI) revokeKey(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.SourcesWrite)
	if !ok {
		return
	}
	id, k := r.PathValue("id"), r.PathValue("key")
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		src, err := source(wsp, id)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(src.WriteKeys, k) {
			return nil, &notFound{"that key is not a key of source " + id}
		}
		src.WriteKeys = slices.DeleteFunc(src.WriteKeys, func(x string) bool { return x == k })
		return map[string]any{"workspace": wsp.ID, "source": id, "revoked": true, "keys": len(src.WriteKeys)}, nil
	})
}

func (c *configAPI) putPlan(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	id := r.PathValue("id")
	var plan json.RawMessage
	if r.Method == http.MethodPut {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConfigBody))
		if err == nil {
			_, err = trackingplan.Compile(b)
		}
		if err != nil {
			writeFieldError(w, http.StatusBadRequest, "tracking plan: "+err.Error(), "sources["+id+"].tracking_plan")
			return
		}
		plan = b
	}
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		src, err := source(wsp, id)
		if err != nil {
			return nil, err
		}
		src.TrackingPlan = plan
		return nil, nil
	})
}

func (c *configAPI) putPII(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	id := r.PathValue("id")
	var rules []pii.Rule
	if err := decode(w, r, &rules, maxConfigBody); err != nil {
		writeError(w, http.StatusBadRequest, `send the rules as JSON, e.g. [{"path": "traits.email", "action": "hash"}]: `+err.Error())
		return
	}
	if err := (pii.Policy{Rules: rules}).Validate(); err != nil {
		writeFieldError(w, http.StatusBadRequest, "pii: "+err.Error(), "sources["+id+"].pii")
		return
	}
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		src, err := source(wsp, id)
		if err != nil {
			return nil, err
		}
		src.PII = rules
		return nil, nil
	})
}

func (c *configAPI) putConsent(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	var p consent.Policy
	if err := decode(w, r, &p, maxConfigBody); err != nil {
		writeError(w, http.StatusBadRequest, `send the policy as JSON, e.g. {"required": ["analytics"]}: `+err.Error())
		return
	}
	if err := p.Validate(); err != nil {
		writeFieldError(w, http.StatusBadRequest, "consent: "+err.Error(), "consent")
		return
	}
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		wsp.Consent = p
		return nil, nil
	})
}

func (c *configAPI) putSegment(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.SegmentsWrite)
	if !ok {
		return
	}
	id := r.PathValue("id")
	var def segments.Definition
	if err := decode(w, r, &def, maxConfigBody); err != nil {
		writeError(w, http.StatusBadRequest, "send the segment definition as JSON (see pkg/segments): "+err.Error())
		return
	}
	if def.ID == "" {
		def.ID = id
	}
	if def.ID != id {
		writeFieldError(w, http.StatusBadRequest, fmt.Sprintf("the definition's id %q is not the segment of the path %q", def.ID, id), "segments["+id+"].id")
		return
	}
	if _, err := segments.CompileDefinition(def); err != nil {
		writeFieldError(w, http.StatusBadRequest, err.Error(), controlplane.SegmentField(id, err))
		return
	}
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		wsp.Segments = upsertByID(wsp.Segments, def, segmentID)
		return nil, nil
	})
}

func (c *configAPI) deleteSegment(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.SegmentsWrite)
	if !ok {
		return
	}
	id := r.PathValue("id")
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		var found bool
		if wsp.Segments, found = deleteByID(wsp.Segments, id, segmentID); !found {
			return nil, &notFound{"segment " + id + " not found in workspace " + wsp.ID}
		}
		return nil, nil
	})
}

func (c *configAPI) putDestination(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	id := r.PathValue("id")
	var d webhook.Destination
	if err := decode(w, r, &d, maxConfigBody); err != nil {
		writeError(w, http.StatusBadRequest, `send the destination as JSON, e.g. {"url": "https://crm.example/hook", "secret_env": "FP_CRM_SECRET", "segments": ["vip"]}: `+err.Error())
		return
	}
	if d.ID == "" {
		d.ID = id
	}
	if d.ID != id {
		writeFieldError(w, http.StatusBadRequest, fmt.Sprintf("the destination's id %q is not the one of the path %q", d.ID, id), "destinations["+id+"].id")
		return
	}
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		wsp.Destinations = upsertByID(wsp.Destinations, d, destinationID)
		return nil, nil
	})
}

func (c *configAPI) deleteDestination(w http.ResponseWriter, r *http.Request) {
	key, ws, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	id := r.PathValue("id")
	c.update(w, r, key, ws, http.StatusOK, func(wsp *sources.Workspace) (any, error) {
		var found bool
		if wsp.Destinations, found = deleteByID(wsp.Destinations, id, destinationID); !found {
			return nil, &notFound{"destination " + id + " not found in workspace " + wsp.ID}
		}
		return nil, nil
	})
}

func segmentID(d segments.Definition) string     { return d.ID }
func destinationID(d webhook.Destination) string { return d.ID }

// upsertByID replaces the element of list with v's id by v, or appends v.
func upsertByID[T any](list []T, v T, id func(T) string) []T {
	if i := slices.IndexFunc(list, func(e T) bool { return id(e) == id(v) }); i >= 0 {
		list[i] = v
		return list
	}
	return append(list, v)
}

// deleteByID removes the elements of list whose id is want, and reports
// whether there was one.
func deleteByID[T any](list []T, want string, id func(T) string) ([]T, bool) {
	n := len(list)
	list = slices.DeleteFunc(list, func(e T) bool { return id(e) == want })
	return list, len(list) < n
}

// apply serves POST /v1/config:apply: the body is a whole configuration
// file (YAML or JSON, pkg/sources); every workspace in it the key may
// write is created or replaced, the others are reported as skipped.
func (c *configAPI) apply(w http.ResponseWriter, r *http.Request) {
	key, _, ok := c.authorize(w, r, access.ConfigWrite)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "the configuration file is larger than 16 MiB")
		return
	}
	cfg, err := sources.ParseConfig(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	dry := r.URL.Query().Get("dry_run") == "true"
	may := func(ws string, exists bool) error {
		switch {
		case !key.CanAccess(ws):
			return fmt.Errorf("this key belongs to workspace %s", key.Workspace)
		case !exists && !key.Operator():
			return errors.New("the workspace does not exist, and creating one needs an operator key (workspace *)")
		}
		return nil
	}
	for _, wsp := range cfg.Workspaces {
		if !key.CanAccess(wsp.ID) {
			continue // skipped by may
		}
		var old *sources.Workspace
		if cur, ok := c.store.Get(wsp.ID); ok {
			old = &cur.Workspace
		}
		if err := c.checkEdit(r, key, old, wsp); err != nil {
			var rf *controlplane.RefusedError
			if errors.As(err, &rf) {
				writeFieldError(w, http.StatusForbidden, "workspace "+wsp.ID+": "+rf.Msg, "workspaces["+wsp.ID+"]."+rf.Field)
				return
			}
			c.writeStoreError(w, key, err)
			return
		}
	}
	rep, err := c.store.Apply(r.Context(), cfg, may, dry, "apply by "+by(key))
	if err != nil {
		c.writeStoreError(w, key, err)
		return
	}
	writeJSON(w, rep)
}

// maxConfigBody bounds the body of one control-plane edit (a workspace
// document, a source, a segment, a tracking plan).
const maxConfigBody = 4 << 20

// writeStoreError answers err; a workspace key is not told which other
// workspace holds a write key (sources.PublicMessage).
func (c *configAPI) writeStoreError(w http.ResponseWriter, key access.Key, err error) {
	var rf *controlplane.RefusedError
	if errors.As(err, &rf) {
		writeFieldError(w, http.StatusForbidden, rf.Msg, rf.Field)
		return
	}
	var inv *controlplane.InvalidError
	if errors.As(err, &inv) && !key.Operator() {
		writeError(w, http.StatusBadRequest, "the configuration does not build: "+sources.PublicMessage(inv, key.Workspace))
		return
	}
	if !errors.Is(err, controlplane.ErrNotFound) && !errors.As(err, new(*controlplane.ConflictError)) && !errors.As(err, new(*badRequest)) &&
		!errors.As(err, new(*notFound)) && !errors.As(err, new(*conflict)) && !errors.As(err, &inv) {
		if c.log != nil {
			c.log.Warn("configuration store unavailable", "err", err)
		}
		writeError(w, http.StatusServiceUnavailable, "configuration store unavailable; retry")
		return
	}
	writeStoreError(w, err)
}

func writeStoreError(w http.ResponseWriter, err error) {
	var (
		ce  *controlplane.ConflictError
		br  *badRequest
		nf  *notFound
		cf  *conflict
		inv *controlplane.InvalidError
	)
	switch {
	case errors.As(err, &ce):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": ce.Error(), "current_version": ce.Current})
	case errors.As(err, &br):
		writeFieldError(w, http.StatusBadRequest, br.msg, br.field)
	case errors.Is(err, controlplane.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, nf.msg)
	case errors.As(err, &cf):
		writeError(w, http.StatusConflict, cf.msg)
	case errors.As(err, &inv):
		writeError(w, http.StatusBadRequest, "the configuration does not build: "+inv.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, "configuration store unavailable; retry: "+err.Error())
	}
}

// writeFieldError is writeError naming the field at fault.
func writeFieldError(w http.ResponseWriter, status int, msg, field string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": msg, "field": field})
}
