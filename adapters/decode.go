package adapters

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// ConfigError names the configuration key at fault and what was expected.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

// Checker is implemented by a config type whose values need checks its
// spec cannot express: URL forms, keys that go together, files that must
// be readable. Check runs after defaults are applied; it may fill values
// derived from others but must change nothing outside the value (create no
// directory, open no connection): `samhub config check` runs it. Errors are
// *ConfigError keyed relative to the block ("tls.cert_file").
type Checker interface {
	Check() error
}

// Normalise checks a block against fields and returns it with defaults
// applied, values converted and secrets read from their *_file. Every
// mistake is a *ConfigError keyed prefix+path ("adapters.casesys.tls.ca_file");
// all of them are joined.
func Normalise(fields []Field, forbidden map[string]string, block map[string]any, prefix string) (map[string]any, error) {
	var errs []error
	out := normalise(fields, forbidden, block, prefix, &errs)
	return out, errors.Join(errs...)
}

func normalise(fields []Field, forbidden map[string]string, block map[string]any, prefix string, errs *[]error) map[string]any {
	bad := func(key, msg string, args ...any) {
		*errs = append(*errs, &ConfigError{Key: prefix + key, Msg: fmt.Sprintf(msg, args...)})
	}
	out := map[string]any{}
	byKey := map[string]Field{}
	for _, f := range fields {
		byKey[f.Key] = f
	}
	for _, k := range sortedKeys(block) {
		v := block[k]
		if why, ok := forbidden[k]; ok {
			bad(k, "%s", why)
			continue
		}
		if base, ok := strings.CutSuffix(k, "_file"); ok && byKey[base].Secret {
			if s, ok := v.(string); !ok || s == "" {
				bad(k, "must name a file holding %s", base)
				continue
			}
			if set, _ := block[base].(string); set != "" {
				bad(k, "set %s or %s, not both", base, k)
				continue
			}
			b, err := os.ReadFile(v.(string))
			if err != nil {
				bad(k, "cannot be read: %v", err)
				continue
			}
			secret := strings.TrimRight(string(b), "\r\n")
			if secret == "" {
				bad(k, "is empty")
				continue
			}
			out[base] = secret
			continue
		}
		f, known := byKey[k]
		if !known {
			msg := "is not a key of this block"
			if s := Suggest(k, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			bad(k, "%s", msg)
			continue
		}
		if _, done := out[k]; done { // filled from its *_file
			continue
		}
		switch f.Type {
		case TypeObject:
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				bad(k, "must be an object with keys, not %s", kindName(v))
				continue
			}
			out[k] = normalise(f.Fields, nil, m, prefix+k+".", errs)
		case TypeObjects:
			l, ok := v.([]any)
			if !ok && v != nil {
				bad(k, "must be a list of objects, not %s", kindName(v))
				continue
			}
			items := make([]any, 0, len(l))
			for i, e := range l {
				m, ok := e.(map[string]any)
				if !ok {
					bad(fmt.Sprintf("%s[%d]", k, i), "must be an object with keys, not %s", kindName(e))
					continue
				}
				items = append(items, normalise(f.Fields, nil, m, fmt.Sprintf("%s%s[%d].", prefix, k, i), errs))
			}
			out[k] = items
		case TypeMap:
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				bad(k, "must be an object with keys, not %s", kindName(v))
				continue
			}
			if f.Fields == nil {
				out[k] = m
				continue
			}
			mm := map[string]any{}
			for _, name := range sortedKeys(m) {
				e, _ := m[name].(map[string]any)
				mm[name] = normalise(f.Fields, nil, e, prefix+k+"."+name+".", errs)
			}
			out[k] = mm
		default:
			if v == nil {
				continue // "key:" with nothing after it: as if absent
			}
			c, err := convert(f, v, k)
			if err != nil {
				bad(k, "%v", err)
				continue
			}
			out[k] = c
		}
	}
	for _, f := range fields {
		v, set := out[f.Key]
		if !set && f.Default != "" {
			v, _ = convert(f, f.Default, f.Key)
			out[f.Key], set = v, true
		}
		if !set && f.Type == TypeObject {
			out[f.Key] = normalise(f.Fields, nil, nil, prefix+f.Key+".", errs)
		}
		_, given := block[f.Key]
		if _, viaFile := block[f.Key+"_file"]; viaFile && f.Secret {
			given = true // its *_file was checked above
		}
		if f.Required && ((!set && !given) || (set && v == "")) {
			if f.Secret {
				bad(f.Key, "is required (or %s_file naming a file that holds it)", f.Key)
			} else {
				bad(f.Key, "is required")
			}
		}
	}
	return out
}

// Suggest names the field a misspelt key most likely meant, or "".
func Suggest(k string, fields []Field) string {
	best, bestD := "", 3
	for _, f := range fields {
		if d := distance(k, f.Key); d < bestD {
			best, bestD = f.Key, d
		}
	}
	return best
}

// distance is the Levenshtein distance, for suggestions only.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// DecodeInto fills out (a pointer to a config struct) from a block that
// Normalise accepted, then runs its Check. Check's errors are prefixed.
func DecodeInto(block map[string]any, out any, prefix string) error {
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
	if err := dec.Decode(block); err != nil {
		return &ConfigError{Key: strings.TrimSuffix(prefix, "."), Msg: err.Error()}
	}
	if c, ok := out.(Checker); ok {
		if err := c.Check(); err != nil {
			return prefixed(err, prefix)
		}
	}
	return nil
}

// prefixed puts prefix before the key of a *ConfigError (and of each one
// joined in err); other errors are wrapped with the block's key.
func prefixed(err error, prefix string) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixed(e, prefix))
		}
		return errors.Join(out...)
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		if strings.HasPrefix(ce.Key, prefix) {
			return ce
		}
		return &ConfigError{Key: prefix + ce.Key, Msg: ce.Msg}
	}
	return fmt.Errorf("%s %w", strings.TrimSuffix(prefix, "."), err)
}

// Decode fills a config struct (pointer) from a block by the spec its tags
// give: unknown keys, wrong types and missing required keys are
// *ConfigError keyed relative to the block; defaults are applied; secrets
// may come from *_file.
func Decode(block map[string]any, out any) error {
	norm, err := Normalise(FieldsOf(reflect.TypeOf(out)), nil, block, "")
	if err != nil {
		return err
	}
	return DecodeInto(norm, out, "")
}

// Defaults returns a C with every default of its spec applied, for code
// and tests that build a config in Go rather than from a block.
func Defaults[C any]() C {
	var c C
	norm, _ := Normalise(FieldsOf(reflect.TypeOf(&c)), nil, nil, "")
	dec, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &c, WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))})
	_ = dec.Decode(norm)
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
