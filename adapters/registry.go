package adapters

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/go-viper/mapstructure/v2"
)

// Factory builds one adapter instance from its configuration block (the
// map under adapters.<name> without "type"). It returns a Source, a Sink or
// a value that is both. Configuration mistakes are returned as *ConfigError.
type Factory func(deps Deps, cfg map[string]any) (any, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a type name available to configuration. It panics on a
// duplicate name, as that is a programming error found at start.
func Register(typeName string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[typeName]; dup {
		panic("adapters: type registered twice: " + typeName)
	}
	factories[typeName] = f
}

// Types lists the registered type names, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for k := range factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Build constructs instance deps.Name of typeName. Errors name the key as
// adapters.<name>.<field>.
func Build(typeName string, deps Deps, cfg map[string]any) (any, error) {
	mu.RLock()
	f, ok := factories[typeName]
	mu.RUnlock()
	if !ok {
		return nil, &ConfigError{Key: "adapters." + deps.Name + ".type", Msg: fmt.Sprintf("unknown adapter type %q (known: %s)", typeName, strings.Join(Types(), ", "))}
	}
	inst, err := f(deps, cfg)
	if err != nil {
		if ce, ok := err.(*ConfigError); ok && !strings.HasPrefix(ce.Key, "adapters.") {
			return nil, &ConfigError{Key: "adapters." + deps.Name + "." + ce.Key, Msg: ce.Msg}
		}
		return nil, fmt.Errorf("adapters.%s: %w", deps.Name, err)
	}
	if _, isSrc := inst.(Source); !isSrc {
		if _, isSink := inst.(Sink); !isSink {
			return nil, fmt.Errorf("adapters.%s: type %q built neither a source nor a sink", deps.Name, typeName)
		}
	}
	return inst, nil
}

// ConfigError names the configuration key at fault and what was expected.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

// Decode fills a typed config struct (mapstructure tags, snake_case keys)
// from an adapter's block, rejecting unknown keys so typos surface at start.
func Decode(cfg map[string]any, out any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(cfg); err != nil {
		return &ConfigError{Key: "(block)", Msg: err.Error()}
	}
	return nil
}
