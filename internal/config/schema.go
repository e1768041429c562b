package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/samhub/samhub/adapters"
)

// SchemaID is the schema's $id; shipped YAML files name it for editors
// (yaml-language-server).
const SchemaID = "https://github.com/samhub/samhub/schemas/samhub.schema.json"

// durationPattern is what time.ParseDuration accepts.
const durationPattern = `^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`

// Schema returns the JSON Schema (2020-12) of the whole configuration file:
// the top-level keys from Config with their defaults, and each adapter
// block by its type's spec. schemas/samhub.schema.json is its output
// (`samhub config schema`); a test fails when they differ.
func Schema() ([]byte, error) {
	defaults := topDefaults()
	top := objectSchema(adapters.FieldsOf(reflect.TypeFor[Config]()), "", defaults)
	props := top["properties"].(map[string]any)
	typeNames := adapters.Types()
	defs := map[string]any{}
	var branches []any
	for _, name := range typeNames {
		t, _ := adapters.TypeNamed(name)
		s := objectSchema(t.Spec.Fields, "", nil)
		s["properties"].(map[string]any)["type"] = map[string]any{"const": name}
		s["description"] = t.Spec.Summary
		defs["adapter-"+name] = s
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": name}}},
			"then": map[string]any{"$ref": "#/$defs/adapter-" + name},
		})
	}
	props["adapters"] = map[string]any{
		"type":        "object",
		"description": "Adapter instances by name (lower-case letters, digits and '-'); each block's keys depend on its type.",
		"propertyNames": map[string]any{
			"pattern": "^[a-z0-9-]+$",
		},
		"additionalProperties": map[string]any{
			"type":       "object",
			"required":   []any{"type"},
			"properties": map[string]any{"type": map[string]any{"enum": anySlice(typeNames), "description": "The adapter type."}},
			"allOf":      branches,
		},
	}
	top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	top["$id"] = SchemaID
	top["title"] = "Samhub configuration"
	top["$defs"] = defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(top)
	return buf.Bytes(), err
}

// topDefaults reads the defaults Load applies, by dotted key.
func topDefaults() map[string]any {
	v := viper.New()
	setDefaults(v)
	out := map[string]any{}
	for _, k := range v.AllKeys() {
		out[k] = v.Get(k)
	}
	return out
}

func objectSchema(fields []adapters.Field, prefix string, defaults map[string]any) map[string]any {
	props := map[string]any{}
	var required []any
	for _, f := range fields {
		props[f.Key] = fieldSchema(f, prefix+f.Key, defaults)
		if f.Secret {
			props[f.Key+"_file"] = map[string]any{"type": "string", "description": "A file holding " + f.Key + " (a trailing newline is ignored); instead of " + f.Key + "."}
		}
		// A secret usually comes from the environment
		// (SAMHUB_ADAPTERS_<NAME>_<KEY>_FILE), so a file without one is
		// not wrong by itself: `samhub config check` sees both.
		if f.Required && !f.Secret {
			required = append(required, f.Key)
		}
	}
	s := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func fieldSchema(f adapters.Field, path string, defaults map[string]any) map[string]any {
	var s map[string]any
	switch f.Type {
	case adapters.TypeString:
		s = map[string]any{"type": "string"}
		if len(f.Enum) > 0 {
			s["enum"] = anySlice(f.Enum)
		}
	case adapters.TypeInt:
		s = map[string]any{"type": "integer"}
	case adapters.TypeNumber:
		s = map[string]any{"type": "number"}
	case adapters.TypeBool:
		s = map[string]any{"type": "boolean"}
	case adapters.TypeDuration:
		s = map[string]any{"type": []any{"string", "integer"}, "pattern": durationPattern, "minimum": 0, "maximum": 0,
			"description": ""}
	case adapters.TypeStrings:
		s = map[string]any{"type": []any{"array", "string"}, "items": map[string]any{"type": "string"}}
	case adapters.TypeObject:
		s = objectSchema(f.Fields, path+".", defaults)
	case adapters.TypeObjects:
		s = map[string]any{"type": "array", "items": objectSchema(f.Fields, path+"[].", nil)}
	case adapters.TypeMap:
		s = map[string]any{"type": "object"}
		if f.Fields != nil {
			s["additionalProperties"] = objectSchema(f.Fields, path+".*.", nil)
		}
	}
	desc := f.Description
	if f.Type == adapters.TypeDuration {
		desc = strings.TrimSpace(desc + " A duration such as 200ms, 10s, 5m or 1h.")
	}
	if desc != "" {
		s["description"] = desc
	} else {
		delete(s, "description")
	}
	if f.Secret {
		s["writeOnly"] = true
	}
	if d, ok := defaultOf(f, path, defaults); ok {
		s["default"] = d
	}
	if f.Example != "" {
		if ex, ok := typed(f, f.Example); ok {
			s["examples"] = []any{ex}
		}
	}
	return s
}

// defaultOf is a field's default as a JSON value: from its tag (adapters)
// or from Load's defaults (top level).
func defaultOf(f adapters.Field, path string, defaults map[string]any) (any, bool) {
	if f.Default != "" {
		return typed(f, f.Default)
	}
	d, ok := defaults[path]
	if !ok || f.Type == adapters.TypeObject {
		return nil, false
	}
	if dd, isDur := d.(time.Duration); isDur {
		return dd.String(), true
	}
	return d, true
}

func typed(f adapters.Field, s string) (any, bool) {
	switch f.Type {
	case adapters.TypeInt:
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	case adapters.TypeNumber:
		n, err := strconv.ParseFloat(s, 64)
		return n, err == nil
	case adapters.TypeBool:
		b, err := strconv.ParseBool(s)
		return b, err == nil
	case adapters.TypeStrings:
		var out []any
		for _, p := range strings.Split(s, ",") {
			out = append(out, strings.TrimSpace(p))
		}
		return out, true
	case adapters.TypeString, adapters.TypeDuration:
		return s, true
	}
	return nil, false
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Reference returns the Markdown configuration reference
// (docs/configuration.md): the top-level keys with their defaults and
// variables, and every adapter type's keys from its spec.
func Reference() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Configuration reference\n\n")
	p("<!-- Generated by `samhub config reference` from the configuration types and the adapters' specs; do not edit. `make generate` rewrites it, and a test fails while it is out of date. -->\n\n")
	p("Samhub reads one YAML file (`samhub serve --config FILE`). A value comes from, in order: a `SAMHUB_*` environment variable, the file, the default below. ")
	p("`samhub config check FILE` decodes and checks everything `serve` would, adapters included, and starts nothing; ")
	p("`samhub config check --print FILE` also prints the effective configuration with secrets masked. ")
	p("The JSON schema of the file is `schemas/samhub.schema.json` (`samhub config schema`); editors that speak the YAML language server read it from a first line `# yaml-language-server: $schema=…`.\n\n")
	p("`samhub config check` exits with 0 when the configuration is valid, 1 when it is not (every mistake is printed on its own line as `key: what was expected`, or as `VARIABLE: …` for an environment variable), and 2 on a usage error (no file given, an unknown flag).\n\n")
	p("## Top-level keys\n\n")
	p("Every key that holds a value can be set as `SAMHUB_<KEY>` with `.` written as `_` (`SAMHUB_NATS_EMBEDDED_KEY_FILE`). Lists of objects and maps (routes, destinations, receivers, users) are set in the file only.\n\n")
	p("| key | type | default |\n|---|---|---|\n")
	defaults := topDefaults()
	var nested []adapters.Field // maps and lists of objects, described below the table
	var nestedKeys []string
	var walk func(prefix string, fs []adapters.Field)
	walk = func(prefix string, fs []adapters.Field) {
		for _, f := range fs {
			key := prefix + f.Key
			if f.Type == adapters.TypeObject {
				walk(key+".", f.Fields)
				continue
			}
			d, _ := defaultOf(f, key, defaults)
			p("| `%s` | %s | %s |\n", key, f.Type, cell(d))
			if len(f.Fields) > 0 {
				nested, nestedKeys = append(nested, f), append(nestedKeys, key)
			}
		}
	}
	walk("", adapters.FieldsOf(reflect.TypeFor[Config]()))
	for i, f := range nested {
		key := nestedKeys[i]
		item := key + "[]."
		if f.Type == adapters.TypeMap {
			item = key + ".<name>."
		}
		p("\n### `%s`\n\n| key | type | description |\n|---|---|---|\n", key)
		var rows func(prefix string, fs []adapters.Field)
		rows = func(prefix string, fs []adapters.Field) {
			for _, f := range fs {
				p("| `%s` | %s | %s |\n", prefix+f.Key, f.Type, strings.ReplaceAll(f.Description, "|", "\\|"))
				if f.Type == adapters.TypeObject {
					rows(prefix+f.Key+".", f.Fields)
				}
			}
		}
		rows(item, f.Fields)
	}
	p("\n## Adapters\n\n")
	p("Each block under `adapters.<name>` has a `type` and the keys of that type. Every key can be set as `SAMHUB_ADAPTERS_<NAME>_<KEY>`: the instance name and the key's path upper-cased, `-` and `.` written as `_` (`SAMHUB_ADAPTERS_CASESYS_TLS_CA_FILE`); lists as comma-separated values, lists of objects as YAML or JSON. ")
	p("A secret key may instead be given as `<key>_file` naming a file that holds it (`SAMHUB_ADAPTERS_CASESYS_CLIENT_SECRET_FILE=/run/credentials/samhub.service/casesys-client-secret`); a trailing newline is ignored. A misspelt key, a misspelt variable, a value of the wrong type and a missing required key are errors naming the full key.\n\n")
	for _, name := range adapters.Types() {
		t, _ := adapters.TypeNamed(name)
		p("### `%s` (%s)\n\n%s\n\n", name, t.Role, t.Spec.Summary)
		if t.Spec.Citizens {
			p("Reaches citizens: it may serve a destination of the `parents` sector (no other type may).\n\n")
		}
		if t.Spec.Description != "" {
			p("%s\n\n", t.Spec.Description)
		}
		p("| key | type | default | description |\n|---|---|---|---|\n")
		var rows func(prefix string, fs []adapters.Field)
		rows = func(prefix string, fs []adapters.Field) {
			for _, f := range fs {
				key := prefix + f.Key
				desc := f.Description
				var notes []string
				if f.Required {
					notes = append(notes, "required")
				}
				if f.Secret {
					notes = append(notes, "secret, or `"+f.Key+"_file`")
				}
				if len(f.Enum) > 0 {
					notes = append(notes, "one of `"+strings.Join(f.Enum, "`, `")+"`")
				}
				if f.Example != "" {
					notes = append(notes, "e.g. `"+f.Example+"`")
				}
				if len(notes) > 0 {
					desc = strings.TrimSpace(desc + " (" + strings.Join(notes, "; ") + ")")
				}
				var d any
				if f.Default != "" {
					d = f.Default
				}
				p("| `%s` | %s | %s | %s |\n", key, f.Type, cell(d), strings.ReplaceAll(desc, "|", "\\|"))
				switch f.Type {
				case adapters.TypeObject:
					rows(key+".", f.Fields)
				case adapters.TypeObjects:
					rows(key+"[].", f.Fields)
				}
			}
		}
		rows("", t.Spec.Fields)
		p("\n")
	}
	return b.String()
}

func cell(v any) string {
	switch d := v.(type) {
	case nil:
		return ""
	case string:
		if d == "" {
			return ""
		}
		// A table cell is one line: a default text's line breaks show as \n.
		return "`" + strings.ReplaceAll(d, "\n", `\n`) + "`"
	case []any, []string:
		return "`" + strings.Trim(fmt.Sprint(d), "[]") + "`"
	}
	return "`" + fmt.Sprint(v) + "`"
}
