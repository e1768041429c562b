package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/samhub/samhub/adapters"
)

// durationHook reads a duration as `10s` or `5m`. It refuses a bare
// number: YAML reads `backoff_initial: 1` as the integer 1, which would
// silently be one nanosecond (0 stays allowed, as in the adapters' blocks).
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() || from == to {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		s := strings.TrimSpace(data.(string))
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("must be a duration such as 200ms, 10s or 5m, not %q", s)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("must be a duration with a unit such as 10s or 5m, not the bare number %v", data)
	}
	return data, nil
}

// decodeErrors turns the decoder's errors (has invalid keys: datadir;
// cannot parse value as 'int') into one *Error
// per key, named as Validate names keys, so a typo or a wrong type reads
// like every other mistake: `datadir: is not a key (did you mean data_dir?)`.
// Errors it does not recognise are returned as they are.
func decodeErrors(err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		var de *mapstructure.DecodeError
		if !errors.As(e, &de) {
			out = append(out, e)
			return
		}
		switch x := e.(type) {
		case *mapstructure.DecodeError:
			var nested *mapstructure.DecodeError
			if inner := x.Unwrap(); inner != nil && errors.As(inner, &nested) {
				walk(inner)
				return
			}
			out = append(out, keyError(x)...)
		case interface{ Unwrap() []error }:
			for _, y := range x.Unwrap() {
				walk(y)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		default:
			out = append(out, e)
		}
	}
	walk(err)
	return errors.Join(out...)
}

func keyError(de *mapstructure.DecodeError) []error {
	errs := keyErrors(de)
	// A value from the environment is named by its variable, as
	// docs/configuration.md promises.
	for _, e := range errs {
		if ce, ok := e.(*Error); ok {
			if v := "SAMHUB_" + strings.ToUpper(strings.ReplaceAll(ce.Key, ".", "_")); os.Getenv(v) != "" {
				ce.Key = v
			}
		}
	}
	return errs
}

func keyErrors(de *mapstructure.DecodeError) []error {
	key := dotted(de.Name())
	inner := de.Unwrap()
	if list, ok := strings.CutPrefix(inner.Error(), "has invalid keys: "); ok {
		fields := fieldsAt(key)
		var errs []error
		for _, k := range strings.Split(list, ", ") {
			msg := "is not a key here"
			if key == "" {
				msg = "is not a top-level key"
			}
			if s := adapters.Suggest(k, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			} else {
				msg += " (docs/configuration.md lists every key)"
			}
			errs = append(errs, &Error{Key: join(key, k), Msg: msg})
		}
		return errs
	}
	var pe *mapstructure.ParseError
	if errors.As(inner, &pe) {
		return []error{&Error{Key: key, Msg: fmt.Sprintf("must be %s, not %q", expected(pe.Expected.Type()), fmt.Sprint(pe.Value))}}
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(inner, &ue) {
		return []error{&Error{Key: key, Msg: fmt.Sprintf("must be %s, not %s", expected(ue.Expected.Type()), kind(ue.Value))}}
	}
	if strings.HasPrefix(inner.Error(), "expected a map or struct") {
		return []error{&Error{Key: key, Msg: "must be an object with keys (key: value lines indented under it)"}}
	}
	return []error{&Error{Key: key, Msg: inner.Error()}}
}

// dotted writes the decoder's "destinations[casefile].adapter" as
// "destinations.casefile.adapter"; list indexes keep their brackets.
func dotted(name string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(name, '[')
		if i < 0 {
			b.WriteString(name)
			return b.String()
		}
		j := strings.IndexByte(name[i:], ']')
		if j < 0 {
			b.WriteString(name)
			return b.String()
		}
		b.WriteString(name[:i])
		idx := name[i+1 : i+j]
		if idx != "" && strings.Trim(idx, "0123456789") == "" {
			b.WriteString("[" + idx + "]")
		} else {
			b.WriteString("." + idx)
		}
		name = name[i+j+1:]
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// fieldsAt returns the fields of the block at a dotted key, for suggestions.
func fieldsAt(key string) []adapters.Field {
	fields := adapters.FieldsOf(reflect.TypeFor[Config]())
	if key == "" {
		return fields
	}
	for _, seg := range strings.Split(key, ".") {
		name, _, _ := strings.Cut(seg, "[")
		var next []adapters.Field
		found := false
		for _, f := range fields {
			if f.Key == name {
				next, found = f.Fields, true
				break
			}
		}
		if !found {
			// A map's entry name (destinations.casefile): its fields are
			// the map's, already in hand.
			continue
		}
		fields = next
	}
	return fields
}

func expected(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration such as 10s or 5m"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object with keys"
	}
	return t.String()
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "empty"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("%q", v)
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("the number %v", v)
}
