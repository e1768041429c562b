package adapters

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Spec describes an adapter type's configuration block. Summary and
// Description are written by hand; Fields is derived from the adapter's
// typed config struct when the type is registered, so a field is declared
// in exactly one place: the struct field and its tags.
//
// The tags read, beside mapstructure's key (",squash" inlines an embedded
// block such as httpclient.Config):
//
//	doc:"…"          what the key is for (required: the reference page is made from it)
//	default:"…"      the value an absent key takes, written as in YAML
//	required:"true"  the key must be set and not empty
//	secret:"true"    never printed; may also be given as <key>_file (a file holding it)
//	example:"…"      an example value for the reference page and the schema
//	enum:"a,b"       the values allowed
type Spec struct {
	Summary     string
	Description string
	// Forbidden names keys people copy from other tools that would weaken
	// the adapter, each with the reason given instead of "unknown key".
	Forbidden map[string]string
	// Citizens says the type reaches citizens through a channel a public
	// authority may write to them by (Digital Post). Only such a type may
	// serve a destination of the parents sector: deny by default, so email
	// stays a channel to professionals (internal/config).
	Citizens bool
	Fields   []Field
}

// FieldType is the kind of value a key takes.
type FieldType string

const (
	TypeString   FieldType = "string"
	TypeInt      FieldType = "integer"
	TypeNumber   FieldType = "number" // a decimal number, e.g. a fraction of a day
	TypeBool     FieldType = "boolean"
	TypeDuration FieldType = "duration"
	TypeStrings  FieldType = "list of strings"
	TypeObject   FieldType = "object"
	TypeObjects  FieldType = "list of objects"
	TypeMap      FieldType = "map" // names to objects (Fields) or to anything (no Fields)
)

// Field is one key of a block.
type Field struct {
	Key         string
	Type        FieldType
	Description string
	Default     string // as written in YAML; "" when none
	Example     string
	Required    bool
	Secret      bool
	Enum        []string
	Fields      []Field // of an object, of each object in a list, of each map value
}

// FieldsOf derives the fields of a config struct type from its tags. It
// panics on a struct it cannot describe (an untagged field, a default that
// does not parse): a programming error found when the type registers.
func FieldsOf(t reflect.Type) []Field {
	fs, err := fieldsOf(t)
	if err != nil {
		panic("adapters: " + t.String() + ": " + err.Error())
	}
	return fs
}

var durationType = reflect.TypeFor[time.Duration]()

func fieldsOf(t reflect.Type) ([]Field, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("not a struct")
	}
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!sf.IsExported() && !sf.Anonymous) {
			continue
		}
		if opts == "squash" {
			inner, err := fieldsOf(sf.Type)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sf.Name, err)
			}
			out = append(out, inner...)
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("field %s has no mapstructure key", sf.Name)
		}
		f := Field{Key: name, Description: sf.Tag.Get("doc"), Default: sf.Tag.Get("default"), Example: sf.Tag.Get("example"),
			Required: sf.Tag.Get("required") == "true", Secret: sf.Tag.Get("secret") == "true"}
		if e := sf.Tag.Get("enum"); e != "" {
			f.Enum = strings.Split(e, ",")
		}
		var err error
		if f.Type, f.Fields, err = typeOf(sf.Type); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if f.Default != "" {
			if _, err := convert(f, f.Default, name); err != nil {
				return nil, fmt.Errorf("default of %s: %v", name, err)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func typeOf(t reflect.Type) (FieldType, []Field, error) {
	if t == durationType {
		return TypeDuration, nil, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeOf(t.Elem())
	case reflect.String:
		return TypeString, nil, nil
	case reflect.Bool:
		return TypeBool, nil, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return TypeInt, nil, nil
	case reflect.Float32, reflect.Float64:
		return TypeNumber, nil, nil
	case reflect.Struct:
		fs, err := fieldsOf(t)
		return TypeObject, fs, err
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return TypeStrings, nil, nil
		}
		if e := t.Elem(); e.Kind() == reflect.Struct || (e.Kind() == reflect.Pointer && e.Elem().Kind() == reflect.Struct) {
			fs, err := fieldsOf(e)
			return TypeObjects, fs, err
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			if e := t.Elem(); e.Kind() == reflect.Struct {
				fs, err := fieldsOf(e)
				return TypeMap, fs, err
			}
			return TypeMap, nil, nil
		}
	}
	return "", nil, fmt.Errorf("type %s cannot be described", t)
}

// Lookup returns the field at a dotted path ("tls.ca_file"), following
// objects only.
func Lookup(fields []Field, path string) (Field, bool) {
	head, rest, nested := strings.Cut(path, ".")
	for _, f := range fields {
		if f.Key != head {
			continue
		}
		if !nested {
			return f, true
		}
		if f.Type == TypeObject {
			return Lookup(f.Fields, rest)
		}
	}
	return Field{}, false
}

// Leaves lists the dotted paths of every key that holds a value (objects
// are descended into), secrets also as <key>_file: what an environment
// variable can set.
func Leaves(fields []Field) []string {
	var out []string
	var walk func(prefix string, fs []Field)
	walk = func(prefix string, fs []Field) {
		for _, f := range fs {
			if f.Type == TypeObject {
				walk(prefix+f.Key+".", f.Fields)
				continue
			}
			out = append(out, prefix+f.Key)
			if f.Secret {
				out = append(out, prefix+f.Key+"_file")
			}
		}
	}
	walk("", fields)
	return out
}

// convert checks v against f's type and returns it in the form the
// decoder takes: strings, int64, bool, duration strings, []any, maps.
// key names the value in errors.
func convert(f Field, v any, key string) (any, error) {
	switch f.Type {
	case TypeString:
		s, ok := scalar(v)
		if !ok {
			return nil, fmt.Errorf("must be a string, not %s", kindName(v))
		}
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, s) {
			return nil, fmt.Errorf("must be one of %s (got %q)", strings.Join(f.Enum, ", "), s)
		}
		return s, nil
	case TypeInt:
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		case uint64:
			return int64(n), nil
		case float64:
			if n == float64(int64(n)) {
				return int64(n), nil
			}
		case string:
			if i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil {
				return i, nil
			}
		}
		return nil, fmt.Errorf("must be a whole number, not %s", describe(v))
	case TypeNumber:
		switch n := v.(type) {
		case int:
			return float64(n), nil
		case int64:
			return float64(n), nil
		case uint64:
			return float64(n), nil
		case float64:
			return n, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(n), 64); err == nil {
				return f, nil
			}
		}
		return nil, fmt.Errorf("must be a number, not %s", describe(v))
	case TypeBool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if p, err := strconv.ParseBool(strings.TrimSpace(b)); err == nil {
				return p, nil
			}
		}
		return nil, fmt.Errorf("must be true or false, not %s", describe(v))
	case TypeDuration:
		switch d := v.(type) {
		case string:
			if _, err := time.ParseDuration(strings.TrimSpace(d)); err == nil {
				return strings.TrimSpace(d), nil
			}
		case int, int64, uint64, float64:
			if fmt.Sprint(d) == "0" {
				return "0s", nil
			}
			return nil, fmt.Errorf("must be a duration with a unit such as 10s or 5m, not the bare number %v", d)
		case time.Duration:
			return d.String(), nil
		}
		return nil, fmt.Errorf("must be a duration such as 200ms, 10s or 5m, not %s", describe(v))
	case TypeStrings:
		switch l := v.(type) {
		case string:
			if strings.TrimSpace(l) == "" {
				return []any{}, nil
			}
			var out []any
			for _, p := range strings.Split(l, ",") {
				out = append(out, strings.TrimSpace(p))
			}
			return out, nil
		case []any:
			out := make([]any, len(l))
			for i, e := range l {
				s, ok := scalar(e)
				if !ok {
					return nil, fmt.Errorf("must be a list of strings; item %d is %s", i, kindName(e))
				}
				out[i] = s
			}
			return out, nil
		case []string:
			out := make([]any, len(l))
			for i, e := range l {
				out[i] = e
			}
			return out, nil
		}
		return nil, fmt.Errorf("must be a list of strings, not %s", kindName(v))
	}
	return nil, fmt.Errorf("%s values cannot be converted here", f.Type)
}

// scalar renders a YAML scalar as the string a string key takes, so an
// unquoted GLN (a number to YAML) is still accepted.
func scalar(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case int, int64, uint64, bool:
		return fmt.Sprint(s), true
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64), true
	}
	return "", false
}

func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "empty"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}

func describe(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return kindName(v)
}
