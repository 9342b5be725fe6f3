package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"

	"github.com/firstparty/firstparty/pkg/identity"
	"sigs.k8s.io/yaml"
)

// Limits that keep one segment's state and evaluation cost bounded.
const (
	MaxAggregates     = 32
	MaxWindow         = 400 * 24 * time.Hour
	MinWindow         = time.Minute
	MaxExpressionSize = 4096 // bytes, per CEL expression
	defaultRecheck    = time.Hour
	celCostLimit      = 100_000
)

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	namePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)
	undeclared  = regexp.MustCompile(`undeclared reference to '([^']+)'`)
)

// reserved are the condition's built-in variables and CEL's reserved words;
// aggregates may not take these names.
var reserved = map[string]bool{
	"traits": true, "identities": true, "first_seen": true, "last_seen": true, "now": true,
	"properties": true,
	"true":       true, "false": true, "null": true, "in": true, "as": true, "break": true,
	"const": true, "continue": true, "else": true, "for": true, "function": true, "if": true,
	"import": true, "let": true, "loop": true, "package": true, "namespace": true,
	"return": true, "var": true, "void": true, "while": true,
}

// kind is the compiled form of an aggregate's kind.
type kind uint8

const (
	kindCount kind = iota + 1
	kindSum
	kindFirstSeen
	kindLastSeen
	kindAbsence
	kindInactive
)

// matcher is a compiled event selector.
type matcher struct {
	event, typ string
	where      cel.Program // nil: no filter
}

func (m *matcher) matchesName(ev *Event) bool {
	return (m.event == "" || m.event == ev.Name) && (m.typ == "" || m.typ == ev.Type)
}

// aggregate is one compiled aggregate.
type aggregate struct {
	name    string
	kind    kind
	hash    string // fingerprint of the definition: state built by another definition is discarded
	match   matcher
	missing matcher // absence only
	path    []string
	within  time.Duration
	width   time.Duration // bucket width for windowed count/sum; 0 = all time
}

func (a *aggregate) windowed() bool { return a.width > 0 }

// Segment is a compiled, validated segment definition. It is immutable and
// safe for concurrent use.
type Segment struct {
	ID      string
	Version uint32
	Name    string
	Def     Definition

	aggs   []*aggregate // only those the condition reads, sorted by name
	byName map[string]*aggregate
	prg    cel.Program
	// costTracked: the condition's cost could not be bounded when it was
	// compiled, so CEL counts it as it runs (see program).
	costTracked bool
	readsNow    bool
	// readsProfile: the condition reads traits, identities, first_seen or
	// last_seen, so it can move on a profile change without any event.
	readsProfile bool
	// readsSeen: the condition reads first_seen or last_seen, which every
	// event moves.
	readsSeen bool
	recheck   time.Duration

	emptyOnce  sync.Once
	emptyValue bool
	emptyOK    bool
}

// WhenEmpty is the condition's answer for a profile with no aggregate state
// yet, when that answer is a constant (the condition reads neither the
// profile nor now): most profiles never match most segments, and the stage
// need not evaluate, decode or store anything for them.
func (s *Segment) WhenEmpty() (value, ok bool) {
	s.emptyOnce.Do(func() {
		if s.readsProfile || s.readsNow {
			return
		}
		v, err := s.Evaluate(&State{}, Profile{}, epoch)
		s.emptyValue, s.emptyOK = v, err == nil
	})
	return s.emptyValue, s.emptyOK
}

// ReadsNow reports whether the condition reads `now` directly: its answer
// can change with no input at all (NextDeadline asks for a recheck).
func (s *Segment) ReadsNow() bool { return s.readsNow }

// ReadsSeen reports whether the condition reads first_seen or last_seen,
// which every event of the profile moves: such a segment is re-evaluated
// on every event, the others only when an event changes one of their
// aggregates or the profile changes.
func (s *Segment) ReadsSeen() bool { return s.readsSeen }

// ReadsProfile reports whether the condition reads the profile (traits,
// identities, first_seen, last_seen): such a segment must be re-evaluated
// when the profile changes, and the stage must load the profile for it.
func (s *Segment) ReadsProfile() bool { return s.readsProfile }

// Aggregates returns the names of the aggregates the condition reads.
func (s *Segment) Aggregates() []string {
	out := make([]string, len(s.aggs))
	for i, a := range s.aggs {
		out[i] = a.name
	}
	return out
}

func newEnv(opts ...cel.EnvOption) (*cel.Env, error) {
	base := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxExpressionSize),
		cel.ParserRecursionLimit(100),
	}
	return cel.NewEnv(append(base, opts...)...)
}

// maxInputBytes bounds the size of anything an expression can read: a
// trait, an identifier, an event's properties all reached the segmenter in
// one Kafka record, which the broker caps at 1 MiB (message.max.bytes).
const maxInputBytes = 1 << 20

// program plans ast for evaluation. When CEL's cost estimate, with every
// input as large as maxInputBytes allows, stays within celCostLimit, the
// program runs without run-time cost tracking: the limit cannot be hit,
// and tracking was about half of an evaluation's time. Otherwise the limit
// is enforced as the expression runs. It reports whether it is.
func program(env *cel.Env, ast *cel.Ast) (cel.Program, bool, error) {
	if est, err := env.EstimateCost(ast, inputBound{}); err == nil && est.Max <= celCostLimit {
		prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		return prg, false, err
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(celCostLimit))
	return prg, true, err
}

// inputBound is the cost estimator behind program: CEL asks it only for
// sizes it cannot tell from the expression itself, and every such value
// came from an input.
type inputBound struct{}

func (inputBound) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if p := n.Path(); len(p) == 1 && p[0] == "identities" {
		return &checker.SizeEstimate{Min: 0, Max: identity.MaxIdentifiers} // what a profile can hold
	}
	return &checker.SizeEstimate{Min: 0, Max: maxInputBytes}
}

func (inputBound) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil // the standard library's own cost model
}

var whereEnv = func() *cel.Env {
	env, err := newEnv(cel.Variable("properties", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		panic(err)
	}
	return env
}()

// Compile parses and validates a segment definition (YAML or JSON) and
// compiles its CEL. Every error names the field at fault and how to fix it.
func Compile(def []byte) (*Segment, error) {
	var d Definition
	if err := yaml.UnmarshalStrict(def, &d); err != nil {
		return nil, fmt.Errorf("parsing segment definition: %w", err)
	}
	return CompileDefinition(d)
}

// CompileDefinition validates and compiles an already-decoded definition.
func CompileDefinition(d Definition) (*Segment, error) {
	if !idPattern.MatchString(d.ID) {
		return nil, fmt.Errorf("id %q: must be 1-64 characters of a-z, 0-9, _ and -", d.ID)
	}
	errf := func(format string, args ...any) error {
		return fmt.Errorf("segment %s: "+format, append([]any{d.ID}, args...)...)
	}
	if d.Version == 0 {
		return nil, errf("version: must be 1 or more")
	}
	if strings.TrimSpace(d.Name) == "" {
		return nil, errf("name: must not be empty")
	}
	if strings.TrimSpace(d.Condition) == "" {
		return nil, errf("condition: must not be empty")
	}
	if len(d.Aggregates) > MaxAggregates {
		return nil, errf("aggregates: %d declared, at most %d allowed", len(d.Aggregates), MaxAggregates)
	}
	recheck := time.Duration(d.Recheck)
	switch {
	case recheck == 0:
		recheck = defaultRecheck
	case recheck < MinWindow:
		return nil, errf("recheck: %s is shorter than %s", recheck, MinWindow)
	}

	names := make([]string, 0, len(d.Aggregates))
	for n := range d.Aggregates {
		names = append(names, n)
	}
	sort.Strings(names)
	all := make(map[string]*aggregate, len(names))
	vars := []cel.EnvOption{
		cel.Variable("traits", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("identities", cel.ListType(cel.StringType)),
		cel.Variable("first_seen", cel.TimestampType),
		cel.Variable("last_seen", cel.TimestampType),
		cel.Variable("now", cel.TimestampType),
	}
	for _, n := range names {
		if n == "true" || n == "false" {
			return nil, errf("aggregate %q: YAML reads y, n, yes, no, on and off as booleans; quote the name or choose another", n)
		}
		if !namePattern.MatchString(n) || reserved[n] {
			return nil, errf("aggregate %q: name must match [a-z_][a-z0-9_]{0,63} and not be a built-in variable or CEL keyword", n)
		}
		a, err := compileAggregate(n, d.Aggregates[n])
		if err != nil {
			return nil, errf("aggregate %s: %w", n, err)
		}
		all[n] = a
		vars = append(vars, cel.Variable(n, a.celType()))
	}

	env, err := newEnv(vars...)
	if err != nil {
		return nil, errf("building CEL environment: %w", err)
	}
	ast, iss := env.Compile(d.Condition)
	if iss != nil && iss.Err() != nil {
		return nil, errf("condition: %w", celIssues(iss, "declare it under aggregates, or read a trait as traits.NAME"))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, errf("condition: must be a bool, but it is %s", t)
	}
	prg, tracked, err := program(env, ast)
	if err != nil {
		return nil, errf("condition: %w", err)
	}

	used := map[string]bool{}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref != nil && ref.Name != "" {
			used[ref.Name] = true
		}
	}
	s := &Segment{ID: d.ID, Version: d.Version, Name: d.Name, Def: d, prg: prg, costTracked: tracked, readsNow: used["now"], recheck: recheck,
		readsProfile: used["traits"] || used["identities"] || used["first_seen"] || used["last_seen"],
		readsSeen:    used["first_seen"] || used["last_seen"]}
	var unused []string
	s.byName = make(map[string]*aggregate, len(names))
	for _, n := range names {
		if used[n] {
			s.aggs = append(s.aggs, all[n])
			s.byName[n] = all[n]
		} else {
			unused = append(unused, n)
		}
	}
	if len(unused) > 0 {
		return nil, errf("aggregates %s: declared but not used in the condition; remove them or use them", strings.Join(unused, ", "))
	}
	return s, nil
}

// celIssues turns CEL issues into one error, naming undeclared variables.
func celIssues(iss *cel.Issues, hint string) error {
	var unknown []string
	for _, e := range iss.Errors() {
		if m := undeclared.FindStringSubmatch(e.Message); m != nil && !slices.Contains(unknown, m[1]) {
			unknown = append(unknown, m[1])
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown name(s) %s (%s):\n%s", strings.Join(unknown, ", "), hint, iss.String())
	}
	return errors.New(iss.String())
}

func (a *aggregate) celType() *cel.Type {
	switch a.kind {
	case kindCount:
		return cel.IntType
	case kindSum:
		return cel.DoubleType
	case kindFirstSeen, kindLastSeen:
		return cel.TimestampType
	default:
		return cel.BoolType
	}
}

func compileAggregate(name string, d AggregateDef) (*aggregate, error) {
	a := &aggregate{name: name}
	set := 0
	var err error
	if d.Count != nil {
		set++
		a.kind = kindCount
		a.match, err = compileMatch(d.Count.Match, "")
		if err == nil {
			err = a.setWindow(time.Duration(d.Count.Within), false)
		}
	}
	if d.Sum != nil {
		set++
		a.kind = kindSum
		a.match, err = compileMatch(d.Sum.Match, "")
		if err == nil {
			err = a.setWindow(time.Duration(d.Sum.Within), false)
		}
		if err == nil {
			a.path, err = propertyPath(d.Sum.Property)
		}
	}
	if d.FirstSeen != nil {
		set++
		a.kind = kindFirstSeen
		a.match, err = compileMatch(d.FirstSeen.Match, "")
	}
	if d.LastSeen != nil {
		set++
		a.kind = kindLastSeen
		a.match, err = compileMatch(d.LastSeen.Match, "")
	}
	if d.Absence != nil {
		set++
		a.kind = kindAbsence
		ab := d.Absence
		if ab.After == "" || ab.Missing == "" {
			return nil, errors.New("absence: both after and missing event names are required")
		}
		a.match, err = compileMatch(Match{Event: ab.After, Type: ab.AfterType, Where: ab.Where}, "where: ")
		if err == nil {
			a.missing, err = compileMatch(Match{Event: ab.Missing, Type: ab.MissingType, Where: ab.MissingWhere}, "missing_where: ")
		}
		if err == nil {
			err = a.setWindow(time.Duration(ab.Within), true)
		}
		a.width = 0
	}
	if d.Inactive != nil {
		set++
		a.kind = kindInactive
		a.match, err = compileMatch(d.Inactive.Match, "")
		if err == nil {
			err = a.setWindow(time.Duration(d.Inactive.Within), true)
		}
		a.width = 0
	}
	switch {
	case set == 0:
		return nil, errors.New("no kind: set exactly one of count, sum, first_seen, last_seen, absence, inactive")
	case set > 1:
		return nil, errors.New("several kinds: set exactly one of count, sum, first_seen, last_seen, absence, inactive")
	case err != nil:
		return nil, err
	}
	canon, _ := json.Marshal(d)
	h := fnv.New64a()
	h.Write(canon)
	a.hash = strconv.FormatUint(h.Sum64(), 36)
	return a, nil
}

// setWindow validates a window and picks the bucket width (see the package
// comment for the precision each width gives).
func (a *aggregate) setWindow(w time.Duration, required bool) error {
	switch {
	case w == 0 && !required:
		return nil
	case w == 0:
		return errors.New("within: required (for example \"1h\" or \"30d\")")
	case w < MinWindow:
		return fmt.Errorf("within: %s is shorter than the minimum %s", w, MinWindow)
	case w > MaxWindow:
		return fmt.Errorf("within: %s is longer than the maximum %s (400 days)", w, MaxWindow)
	case w%time.Millisecond != 0:
		return fmt.Errorf("within: %s must be whole milliseconds", w)
	}
	a.within = w
	switch {
	case w <= 6*time.Hour:
		a.width = time.Minute
	case w <= 7*24*time.Hour:
		a.width = time.Hour
	default:
		a.width = 24 * time.Hour
	}
	return nil
}

func compileMatch(m Match, field string) (matcher, error) {
	out := matcher{event: m.Event, typ: m.Type}
	switch m.Type {
	case "", "track", "page", "screen", "identify", "group", "alias":
	default:
		return out, fmt.Errorf("type %q: must be one of track, page, screen, identify, group, alias", m.Type)
	}
	if strings.TrimSpace(m.Where) == "" {
		return out, nil
	}
	if field == "" {
		field = "where: "
	}
	ast, iss := whereEnv.Compile(m.Where)
	if iss != nil && iss.Err() != nil {
		return out, fmt.Errorf("%s%w", field, celIssues(iss, "a filter reads only properties, e.g. properties.category"))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return out, fmt.Errorf("%smust be a bool, but it is %s", field, t)
	}
	prg, _, err := program(whereEnv, ast)
	if err != nil {
		return out, fmt.Errorf("%s%w", field, err)
	}
	out.where = prg
	return out, nil
}

func propertyPath(p string) ([]string, error) {
	p = strings.TrimPrefix(p, "properties.")
	if p == "" {
		return nil, errors.New("sum: property is required (for example revenue)")
	}
	parts := strings.Split(p, ".")
	for _, s := range parts {
		if s == "" {
			return nil, fmt.Errorf("property %q: empty path segment", p)
		}
	}
	return parts, nil
}
