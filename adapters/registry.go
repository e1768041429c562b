package adapters

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Role says what an adapter type is in the flow.
type Role int

const (
	RoleSource Role = 1 << iota
	RoleSink
)

func (r Role) String() string {
	switch r {
	case RoleSource:
		return "source"
	case RoleSink:
		return "sink"
	case RoleSource | RoleSink:
		return "source and sink"
	}
	return "none"
}

// Type is a registered adapter type: its spec and typed constructor.
type Type struct {
	Name string
	Role Role
	Spec Spec
	// ConfigType is the struct its blocks decode into.
	ConfigType reflect.Type
	build      func(deps Deps, cfg any) (Instance, error)
}

// Instance is what one configured adapter is: a Source, a Sink or both
// (often one value). A two-sided type may leave a side nil when its
// configuration turns that side off.
type Instance struct {
	Source Source
	Sink   Sink
}

// Value returns the adapter as one value: the Source when it is also the
// Sink or the only side, else the Sink.
func (i Instance) Value() any {
	if i.Source != nil && (i.Sink == nil || any(i.Source) == any(i.Sink)) {
		return i.Source
	}
	if i.Sink != nil {
		return i.Sink
	}
	return nil
}

var (
	mu    sync.RWMutex
	types = map[string]*Type{}
)

// RegisterSource makes a source type available to configuration. Its
// fields are derived from C's tags (see Spec). It panics on a duplicate
// name or a config type it cannot describe: programming errors found at
// start.
func RegisterSource[C any](name string, spec Spec, ctor func(Deps, C) (Source, error)) {
	register[C](name, RoleSource, spec, func(d Deps, c C) (Instance, error) {
		s, err := ctor(d, c)
		return Instance{Source: s}, err
	})
}

// RegisterSink makes a sink type available to configuration, as
// RegisterSource does.
func RegisterSink[C any](name string, spec Spec, ctor func(Deps, C) (Sink, error)) {
	register[C](name, RoleSink, spec, func(d Deps, c C) (Instance, error) {
		s, err := ctor(d, c)
		return Instance{Sink: s}, err
	})
}

// RegisterSourceSink registers a type that is both: one instance serves
// both sides (they share a client, state and locks). The constructor may
// return a nil side that its configuration turns off; not both.
func RegisterSourceSink[C any](name string, spec Spec, ctor func(Deps, C) (Source, Sink, error)) {
	register[C](name, RoleSource|RoleSink, spec, func(d Deps, c C) (Instance, error) {
		src, sink, err := ctor(d, c)
		return Instance{Source: src, Sink: sink}, err
	})
}

func register[C any](name string, role Role, spec Spec, ctor func(Deps, C) (Instance, error)) {
	ct := reflect.TypeFor[C]()
	spec.Fields = FieldsOf(ct)
	t := &Type{Name: name, Role: role, Spec: spec, ConfigType: ct, build: func(d Deps, cfg any) (Instance, error) {
		return ctor(d, *cfg.(*C))
	}}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := types[name]; dup {
		panic("adapters: type registered twice: " + name)
	}
	types[name] = t
}

// Types lists the registered type names, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(types))
	for k := range types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TypeNamed returns a registered type.
func TypeNamed(name string) (*Type, bool) {
	mu.RLock()
	defer mu.RUnlock()
	t, ok := types[name]
	return t, ok
}

func unknownType(instance, typeName string) error {
	return &ConfigError{Key: "adapters." + instance + ".type", Msg: fmt.Sprintf("unknown adapter type %q (known: %s)", typeName, strings.Join(Types(), ", "))}
}

// Config decodes and checks instance's block (its "type" key is ignored)
// into a new config value (a pointer to the type's config struct) without
// building anything. Errors are *ConfigError keyed adapters.<instance>.<key>.
func (t *Type) Config(instance string, block map[string]any) (any, error) {
	prefix := "adapters." + instance + "."
	b := withoutType(block)
	norm, err := Normalise(t.Spec.Fields, t.Spec.Forbidden, b, prefix)
	if err != nil {
		return nil, err
	}
	cfg := reflect.New(t.ConfigType).Interface()
	if err := DecodeInto(norm, cfg, prefix); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Check decodes and checks an instance's block as the hub would before
// building it, and builds nothing: what `samhub config check` runs.
func Check(typeName, instance string, block map[string]any) error {
	t, ok := TypeNamed(typeName)
	if !ok {
		return unknownType(instance, typeName)
	}
	_, err := t.Config(instance, block)
	return err
}

// BuildInstance decodes, checks and constructs instance deps.Name of
// typeName.
func BuildInstance(typeName string, deps Deps, block map[string]any) (Instance, error) {
	t, ok := TypeNamed(typeName)
	if !ok {
		return Instance{}, unknownType(deps.Name, typeName)
	}
	cfg, err := t.Config(deps.Name, block)
	if err != nil {
		return Instance{}, err
	}
	inst, err := t.build(deps, cfg)
	if err != nil {
		return Instance{}, prefixed(err, "adapters."+deps.Name+".")
	}
	if inst.Source == nil && inst.Sink == nil {
		return Instance{}, &ConfigError{Key: "adapters." + deps.Name, Msg: "this configuration turns off both the source and the sink side"}
	}
	return inst, nil
}

// Build is BuildInstance returning the adapter as one value (see
// Instance.Value).
func Build(typeName string, deps Deps, block map[string]any) (any, error) {
	inst, err := BuildInstance(typeName, deps, block)
	if err != nil {
		return nil, err
	}
	return inst.Value(), nil
}

func withoutType(block map[string]any) map[string]any {
	if _, ok := block["type"]; !ok {
		return block
	}
	out := make(map[string]any, len(block))
	for k, v := range block {
		if k != "type" {
			out[k] = v
		}
	}
	return out
}
