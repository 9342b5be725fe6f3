package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/trackingplan"
	"github.com/firstparty/firstparty/pkg/webhook"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

// configAPI is the control plane (apiv1.ConfigService over
// pkg/controlplane; paths and scopes in proto/api/v1/config.proto): the
// workspaces' configuration, written to the config topic and in force at
// every service within seconds.
//
// Isolation: a key of workspace A gets NOT_FOUND for workspace B, exactly
// as for a workspace that does not exist. Only an operator key (workspace
// "*", pkg/access) creates and deletes workspaces. Every write records who
// made it (the document's updated_by) and is logged.
type configAPI struct {
	apiv1.UnimplementedConfigServiceServer
	auth  *auth
	store *controlplane.Store // nil: the configuration comes from a file
	// destinations is where a workspace key's destinations may send
	// (controlplane.CheckTenantEdit); operator keys are not checked.
	destinations webhook.URLPolicy
	log          *slog.Logger // nil: nothing logged
}

// authorize checks the scope and that the key may act on workspace ws
// ("": no workspace); another workspace is "not found".
func (c *configAPI) authorize(ctx context.Context, scope access.Scope, ws string) (access.Key, error) {
	key, err := c.auth.authorize(ctx, scope)
	if err != nil {
		return key, err
	}
	if c.store == nil {
		return key, unavailable("the control plane is off: this API reads its configuration from a file; start it with -config.source=topic")
	}
	if ws != "" && !key.CanAccess(ws) {
		return key, missing("workspace " + ws + " not found")
	}
	return key, nil
}

func by(k access.Key) string { return "api key of " + k.Workspace }

// created makes the REST answer 201 Created (gateway.go, httpStatus).
func created(ctx context.Context) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(httpCodeHeader, "201"))
}

// logWrite records a write of the configuration (the audit trail beside
// the document's updated_by).
func (c *configAPI) logWrite(what, ws string, version int64, key access.Key) {
	if c.log != nil {
		c.log.Info("configuration written", "change", what, "workspace", ws, "version", version, "by", by(key))
	}
}

// document is d on the wire.
func document(d controlplane.Document) (*apiv1.Document, error) {
	m := &apiv1.Document{}
	if err := toProto(d, m); err != nil {
		return nil, rpcError(codes.Internal, "converting workspace "+d.ID+" for the answer: "+err.Error())
	}
	return m, nil
}

func (c *configAPI) ListWorkspaces(ctx context.Context, _ *apiv1.ListWorkspacesRequest) (*apiv1.ListWorkspacesResponse, error) {
	key, err := c.authorize(ctx, access.ConfigRead, "")
	if err != nil {
		return nil, err
	}
	out := &apiv1.ListWorkspacesResponse{Workspaces: []*apiv1.Document{}}
	for _, d := range c.store.Documents() {
		if key.CanAccess(d.ID) {
			m, err := document(d)
			if err != nil {
				return nil, err
			}
			out.Workspaces = append(out.Workspaces, m)
		}
	}
	return out, nil
}

func (c *configAPI) GetWorkspace(ctx context.Context, req *apiv1.GetWorkspaceRequest) (*apiv1.Document, error) {
	if _, err := c.authorize(ctx, access.ConfigRead, req.WorkspaceId); err != nil {
		return nil, err
	}
	d, found := c.store.Get(req.WorkspaceId)
	if !found {
		return nil, missing("workspace " + req.WorkspaceId + " not found")
	}
	return document(d)
}

func (c *configAPI) PutWorkspace(ctx context.Context, req *apiv1.PutWorkspaceRequest) (*apiv1.Document, error) {
	ws := req.WorkspaceId
	key, err := c.authorize(ctx, access.ConfigWrite, ws)
	if err != nil {
		return nil, err
	}
	if req.Document == nil {
		return nil, invalid(`send the workspace document (the fields of one entry of workspaces: in the configuration file, plus "version": the version it replaces, 0 to create)`, withField("document"))
	}
	var d controlplane.Document
	if err := fromProto(req.Document, &d); err != nil {
		return nil, invalid("the workspace document: "+err.Error(), withField("document"))
	}
	if d.ID == "" {
		d.ID = ws
	}
	if d.ID != ws {
		return nil, invalid(fmt.Sprintf("the document's id %q is not the workspace of the path %q", d.ID, ws), withField("id"))
	}
	cur, exists := c.store.Get(ws)
	if !exists && !key.Operator() {
		return nil, rpcError(codes.PermissionDenied, "workspace "+ws+" does not exist, and creating a workspace needs an operator key (workspace *)")
	}
	if err := c.checkEdit(ctx, key, &cur.Workspace, d.Workspace); err != nil {
		return nil, c.storeError(key, err)
	}
	doc, err := c.store.Put(ctx, d.Workspace, d.Version, by(key))
	if err != nil {
		return nil, c.storeError(key, err)
	}
	c.logWrite("workspace", ws, doc.Version, key)
	if doc.Version == 1 {
		created(ctx)
	}
	return document(doc)
}

func (c *configAPI) DeleteWorkspace(ctx context.Context, req *apiv1.DeleteWorkspaceRequest) (*apiv1.DeleteWorkspaceResponse, error) {
	ws := req.WorkspaceId
	key, err := c.authorize(ctx, access.ConfigWrite, ws)
	if err != nil {
		return nil, err
	}
	if !key.Operator() {
		return nil, rpcError(codes.PermissionDenied, "deleting a workspace needs an operator key (workspace *)")
	}
	expected := int64(-1)
	if req.Version != nil {
		if *req.Version < 1 {
			return nil, invalid("version must be the workspace's current version (1 or more)", withField("version"))
		}
		expected = *req.Version
	}
	if err := c.store.Delete(ctx, ws, expected); err != nil {
		return nil, c.storeError(key, err)
	}
	c.logWrite("workspace deleted", ws, 0, key)
	return &apiv1.DeleteWorkspaceResponse{Deleted: ws}, nil
}

// badRequest is an edit refused before writing: INVALID_ARGUMENT naming
// the field.
type badRequest struct{ msg, field string }

func (e *badRequest) Error() string { return e.msg }

// notFound is a part of the workspace that does not exist.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

// conflict is an edit that clashes with what exists (a source id taken).
type conflict struct{ msg string }

func (e *conflict) Error() string { return e.msg }

// update changes one part of a workspace (read, change, write; read again
// on a version conflict) and answers the new document. The caller
// authorized key for ws first. fn may run more than once.
func (c *configAPI) update(ctx context.Context, key access.Key, ws, what string, fn func(*sources.Workspace) error) (controlplane.Document, error) {
	doc, err := c.store.Update(ctx, ws, by(key), func(wsp *sources.Workspace) error {
		old := *wsp
		old.Destinations = slices.Clone(wsp.Destinations)
		if err := fn(wsp); err != nil {
			return err
		}
		return c.checkEdit(ctx, key, &old, *wsp)
	})
	if err != nil {
		return doc, c.storeError(key, err)
	}
	c.logWrite(what, ws, doc.Version, key)
	return doc, nil
}

// updateDoc is update answering the new document.
func (c *configAPI) updateDoc(ctx context.Context, key access.Key, ws, what string, fn func(*sources.Workspace) error) (*apiv1.Document, error) {
	doc, err := c.update(ctx, key, ws, what, fn)
	if err != nil {
		return nil, err
	}
	return document(doc)
}

// checkEdit applies controlplane.CheckTenantEdit to a workspace key's
// edit; an operator key may edit anything.
func (c *configAPI) checkEdit(ctx context.Context, key access.Key, old *sources.Workspace, w sources.Workspace) error {
	if key.Operator() {
		return nil
	}
	return controlplane.CheckTenantEdit(ctx, old, w, c.destinations)
}

func source(wsp *sources.Workspace, id string) (*sources.Source, error) {
	for i := range wsp.Sources {
		if wsp.Sources[i].ID == id {
			return &wsp.Sources[i], nil
		}
	}
	return nil, &notFound{"source " + id + " not found in workspace " + wsp.ID}
}

func (c *configAPI) CreateSource(ctx context.Context, req *apiv1.CreateSourceRequest) (*apiv1.CreateSourceResponse, error) {
	ws := req.WorkspaceId
	key, err := c.authorize(ctx, access.SourcesWrite, ws)
	if err != nil {
		return nil, err
	}
	const example = `send the source, e.g. {"id": "web", "name": "Website", "allowed_origins": ["https://shop.example"]}`
	if req.Source == nil {
		return nil, invalid(example, withField("source"))
	}
	var src sources.Source
	if err := fromProto(req.Source, &src); err != nil {
		return nil, invalid(example+": "+err.Error(), withField("source"))
	}
	if len(src.WriteKeys) > 0 {
		return nil, invalid("write keys are generated: leave write_keys out (rotate with POST …/sources/{id}/keys)", withField("write_keys"))
	}
	if src.ID == "" {
		return nil, invalid(`the source needs an "id"`, withField("id"))
	}
	var saved sources.Source
	doc, err := c.update(ctx, key, ws, "source "+src.ID+" created", func(wsp *sources.Workspace) error {
		if _, err := source(wsp, src.ID); err == nil {
			return &conflict{"source " + src.ID + " already exists in workspace " + wsp.ID}
		}
		saved = src
		saved.WriteKeys = []string{controlplane.NewWriteKey()}
		wsp.Sources = append(wsp.Sources, saved)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &apiv1.CreateSourceResponse{Workspace: doc.ID, Source: &apiv1.Source{}, WriteKey: saved.WriteKeys[0]}
	if err := toProto(saved, out.Source); err != nil {
		return nil, rpcError(codes.Internal, "converting source "+saved.ID+" for the answer: "+err.Error())
	}
	created(ctx)
	return out, nil
}

func (c *configAPI) DeleteSource(ctx context.Context, req *apiv1.DeleteSourceRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.SourcesWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.SourceId
	return c.updateDoc(ctx, key, req.WorkspaceId, "source "+id+" deleted", func(wsp *sources.Workspace) error {
		if _, err := source(wsp, id); err != nil {
			return err
		}
		wsp.Sources = slices.DeleteFunc(wsp.Sources, func(s sources.Source) bool { return s.ID == id })
		return nil
	})
}

func (c *configAPI) RotateWriteKey(ctx context.Context, req *apiv1.RotateWriteKeyRequest) (*apiv1.RotateWriteKeyResponse, error) {
	key, err := c.authorize(ctx, access.SourcesWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.SourceId
	if req.RetireAll && len(req.Retire) > 0 {
		return nil, invalid("send retire (the keys to remove) or retire_all, not both", withField("retire"))
	}
	var out *apiv1.RotateWriteKeyResponse
	_, err = c.update(ctx, key, req.WorkspaceId, "write key of source "+id+" rotated", func(wsp *sources.Workspace) error {
		src, err := source(wsp, id)
		if err != nil {
			return err
		}
		for _, k := range req.Retire {
			if !slices.Contains(src.WriteKeys, k) {
				return &badRequest{"a key to retire is not a key of source " + id, "retire"}
			}
		}
		retired := len(req.Retire)
		if req.RetireAll {
			retired = len(src.WriteKeys)
			src.WriteKeys = nil
		}
		src.WriteKeys = slices.DeleteFunc(src.WriteKeys, func(k string) bool { return slices.Contains(req.Retire, k) })
		k := controlplane.NewWriteKey()
		src.WriteKeys = append(src.WriteKeys, k)
		out = &apiv1.RotateWriteKeyResponse{Workspace: wsp.ID, Source: id, WriteKey: k, Retired: int32(retired), Keys: int32(len(src.WriteKeys))}
		return nil
	})
	if err != nil {
		return nil, err
	}
	created(ctx)
	return out, nil
}

func (c *configAPI) RevokeWriteKey(ctx context.Context, req *apiv1.RevokeWriteKeyRequest) (*apiv1.RevokeWriteKeyResponse, error) {
	key, err := c.authorize(ctx, access.SourcesWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id, k := req.SourceId, req.Key
	var out *apiv1.RevokeWriteKeyResponse
	_, err = c.update(ctx, key, req.WorkspaceId, "write key of source "+id+" revoked", func(wsp *sources.Workspace) error {
		src, err := source(wsp, id)
		if err != nil {
			return err
		}
		if !slices.Contains(src.WriteKeys, k) {
			return &notFound{"that key is not a key of source " + id}
		}
		src.WriteKeys = slices.DeleteFunc(src.WriteKeys, func(x string) bool { return x == k })
		out = &apiv1.RevokeWriteKeyResponse{Workspace: wsp.ID, Source: id, Revoked: true, Keys: int32(len(src.WriteKeys))}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *configAPI) PutTrackingPlan(ctx context.Context, req *apiv1.PutTrackingPlanRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.ConfigWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.SourceId
	field := withField("sources[" + id + "].tracking_plan")
	if req.TrackingPlan == nil {
		return nil, invalid("send the tracking plan as a JSON object (see pkg/trackingplan), e.g. {\"id\": \"shop-web\", \"version\": 1, \"events\": {}}", field)
	}
	plan, err := compactJSON(req.TrackingPlan)
	if err == nil {
		_, err = trackingplan.Compile(plan)
	}
	if err != nil {
		return nil, invalid("tracking plan: "+err.Error(), field)
	}
	return c.setPlan(ctx, key, req.WorkspaceId, id, plan)
}

func (c *configAPI) DeleteTrackingPlan(ctx context.Context, req *apiv1.DeleteTrackingPlanRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.ConfigWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	return c.setPlan(ctx, key, req.WorkspaceId, req.SourceId, nil)
}

func (c *configAPI) setPlan(ctx context.Context, key access.Key, ws, id string, plan []byte) (*apiv1.Document, error) {
	what := "tracking plan of source " + id + " set"
	if plan == nil {
		what = "tracking plan of source " + id + " deleted"
	}
	return c.updateDoc(ctx, key, ws, what, func(wsp *sources.Workspace) error {
		src, err := source(wsp, id)
		if err != nil {
			return err
		}
		src.TrackingPlan = plan
		return nil
	})
}

func (c *configAPI) PutPIIRules(ctx context.Context, req *apiv1.PutPIIRulesRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.ConfigWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.SourceId
	field := withField("sources[" + id + "].pii")
	var holder sources.Source // the rules, converted as a source's
	if err := fromProto(&apiv1.Source{Pii: req.Rules}, &holder); err != nil {
		return nil, invalid(`send the rules, e.g. [{"path": "traits.email", "action": "hash"}]: `+err.Error(), field)
	}
	rules := holder.PII
	if err := (pii.Policy{Rules: rules}).Validate(); err != nil {
		return nil, invalid("pii: "+err.Error(), field)
	}
	return c.updateDoc(ctx, key, req.WorkspaceId, "pii rules of source "+id+" set", func(wsp *sources.Workspace) error {
		src, err := source(wsp, id)
		if err != nil {
			return err
		}
		src.PII = rules
		return nil
	})
}

func (c *configAPI) PutConsentPolicy(ctx context.Context, req *apiv1.PutConsentPolicyRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.ConfigWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	var p consent.Policy
	if req.Policy != nil {
		if err := fromProto(req.Policy, &p); err != nil {
			return nil, invalid(`send the policy, e.g. {"required": ["analytics"]}: `+err.Error(), withField("consent"))
		}
	}
	if err := p.Validate(); err != nil {
		return nil, invalid("consent: "+err.Error(), withField("consent"))
	}
	return c.updateDoc(ctx, key, req.WorkspaceId, "consent policy set", func(wsp *sources.Workspace) error {
		wsp.Consent = p
		return nil
	})
}

func (c *configAPI) PutSegment(ctx context.Context, req *apiv1.PutSegmentRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.SegmentsWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.SegmentId
	base := "segments[" + id + "]"
	if req.Segment == nil {
		return nil, invalid("send the segment definition (see pkg/segments), e.g. {\"version\": 1, \"name\": \"VIP\", \"condition\": \"traits.plan == 'pro'\"}", withField(base))
	}
	var def segments.Definition
	if err := fromProto(req.Segment, &def); err != nil {
		return nil, invalid("segment "+id+": "+err.Error(), withField(base))
	}
	if def.ID == "" {
		def.ID = id
	}
	if def.ID != id {
		return nil, invalid(fmt.Sprintf("the definition's id %q is not the segment of the path %q", def.ID, id), withField(base+".id"))
	}
	// No version: the next one when the definition changed (so members
	// are decided anew and the segment is backfilled), the current one
	// when it did not. Checked here with a stand-in version.
	auto := def.Version == 0
	check := def
	if auto {
		check.Version = 1
	}
	if _, err := segments.CompileDefinition(check); err != nil {
		return nil, invalid(err.Error(), withField(controlplane.SegmentField(id, err)))
	}
	return c.updateDoc(ctx, key, req.WorkspaceId, "segment "+id+" set", func(wsp *sources.Workspace) error {
		if auto {
			def.Version = controlplane.NextSegmentVersion(wsp, def)
		}
		wsp.Segments = upsertByID(wsp.Segments, def, segmentID)
		return nil
	})
}

func (c *configAPI) DeleteSegment(ctx context.Context, req *apiv1.DeleteSegmentRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.SegmentsWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.SegmentId
	return c.updateDoc(ctx, key, req.WorkspaceId, "segment "+id+" deleted", func(wsp *sources.Workspace) error {
		var found bool
		if wsp.Segments, found = deleteByID(wsp.Segments, id, segmentID); !found {
			return &notFound{"segment " + id + " not found in workspace " + wsp.ID}
		}
		return nil
	})
}

func (c *configAPI) PutDestination(ctx context.Context, req *apiv1.PutDestinationRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.ConfigWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.DestinationId
	base := "destinations[" + id + "]"
	const example = `send the destination, e.g. {"url": "https://crm.example/hook", "secret_env": "FP_CRM_SECRET", "segments": ["vip"]}`
	if req.Destination == nil {
		return nil, invalid(example, withField(base))
	}
	var d webhook.Destination
	if err := fromProto(req.Destination, &d); err != nil {
		return nil, invalid(example+": "+err.Error(), withField(base))
	}
	if d.ID == "" {
		d.ID = id
	}
	if d.ID != id {
		return nil, invalid(fmt.Sprintf("the destination's id %q is not the one of the path %q", d.ID, id), withField(base+".id"))
	}
	return c.updateDoc(ctx, key, req.WorkspaceId, "destination "+id+" set", func(wsp *sources.Workspace) error {
		wsp.Destinations = upsertByID(wsp.Destinations, d, destinationID)
		return nil
	})
}

func (c *configAPI) DeleteDestination(ctx context.Context, req *apiv1.DeleteDestinationRequest) (*apiv1.Document, error) {
	key, err := c.authorize(ctx, access.ConfigWrite, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	id := req.DestinationId
	return c.updateDoc(ctx, key, req.WorkspaceId, "destination "+id+" deleted", func(wsp *sources.Workspace) error {
		var found bool
		if wsp.Destinations, found = deleteByID(wsp.Destinations, id, destinationID); !found {
			return &notFound{"destination " + id + " not found in workspace " + wsp.ID}
		}
		return nil
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

// ApplyConfig is GitOps: every workspace of the file the key may write is
// created or replaced, the others are reported as skipped.
func (c *configAPI) ApplyConfig(ctx context.Context, req *apiv1.ApplyConfigRequest) (*apiv1.ApplyReport, error) {
	key, err := c.authorize(ctx, access.ConfigWrite, "")
	if err != nil {
		return nil, err
	}
	if req.Config == nil {
		return nil, invalid("send the configuration file as the body (JSON, or YAML with Content-Type: application/yaml)", withField("config"))
	}
	var cfg sources.Config
	if err := fromProto(req.Config, &cfg); err != nil {
		return nil, invalid("the configuration: "+err.Error(), withField("config"))
	}
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
		if err := c.checkEdit(ctx, key, old, wsp); err != nil {
			var rf *controlplane.RefusedError
			if errors.As(err, &rf) {
				return nil, rpcError(codes.PermissionDenied, "workspace "+wsp.ID+": "+rf.Msg, withField("workspaces["+wsp.ID+"]."+rf.Field))
			}
			return nil, c.storeError(key, err)
		}
	}
	rep, err := c.store.Apply(ctx, cfg, may, req.DryRun, "apply by "+by(key))
	if err != nil {
		return nil, c.storeError(key, err)
	}
	for ws, v := range rep.Written {
		c.logWrite("applied", ws, v, key)
	}
	out := &apiv1.ApplyReport{}
	if err := toProto(rep, out); err != nil {
		return nil, rpcError(codes.Internal, "converting the apply report: "+err.Error())
	}
	return out, nil
}

// storeError is err as an answer; a workspace key is not told which other
// workspace holds a write key (sources.PublicMessage).
func (c *configAPI) storeError(key access.Key, err error) error {
	var (
		rf  *controlplane.RefusedError
		inv *controlplane.InvalidError
		ce  *controlplane.ConflictError
		tl  *controlplane.TooLargeError
		ve  *controlplane.VersionError
		br  *badRequest
		nf  *notFound
		cf  *conflict
	)
	switch {
	case errors.As(err, &rf):
		return rpcError(codes.PermissionDenied, rf.Msg, withField(rf.Field))
	case errors.As(err, &ve):
		return invalid(ve.Msg, withField(ve.Field))
	case errors.As(err, &inv) && !key.Operator():
		return invalid("the configuration does not build: " + sources.PublicMessage(inv, key.Workspace))
	case errors.As(err, &inv):
		return invalid("the configuration does not build: " + inv.Error())
	case errors.As(err, &ce):
		return rpcError(codes.Aborted, ce.Error(), withVersion(ce.Current))
	case errors.As(err, &tl):
		return invalid(tl.Error())
	case errors.As(err, &br):
		return invalid(br.msg, withField(br.field))
	case errors.Is(err, controlplane.ErrNotFound):
		return missing(err.Error())
	case errors.As(err, &nf):
		return missing(nf.msg)
	case errors.As(err, &cf):
		return rpcError(codes.AlreadyExists, cf.msg)
	}
	if c.log != nil {
		c.log.Warn("configuration store unavailable", "err", err)
	}
	return unavailable("configuration store unavailable; retry")
}
