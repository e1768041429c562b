package adapters

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that sets an adapter key:
// SAMHUB_ADAPTERS_<NAME>_<KEY>, the instance name and the key's dotted
// path upper-cased with '-' and '.' as '_' (SAMHUB_ADAPTERS_CASESYS_TLS_CA_FILE).
const EnvPrefix = "SAMHUB_ADAPTERS_"

// EnvName is the variable that sets key (a dotted path) of instance.
func EnvName(instance, key string) string {
	return EnvPrefix + envPart(instance) + "_" + envPart(key)
}

func envPart(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s))
}

// ApplyEnv sets adapter keys from environ ("NAME=value" entries) into the
// configured instances' blocks, in place. Every key of a registered type
// can be set, secrets also as <KEY>_FILE; a variable under EnvPrefix that
// names no key of a configured instance is an error (a misspelt override
// must not be ignored). Lists take comma-separated values, lists of
// objects and maps take YAML or JSON.
func ApplyEnv(instances map[string]map[string]any, environ []string) error {
	// Longest names first, so instance "a-b" wins SAMHUB_ADAPTERS_A_B_URL
	// over instance "a" with a key "b_url".
	names := make([]string, 0, len(instances))
	for n := range instances {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	var errs []error
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, EnvPrefix)
		if !ok {
			continue
		}
		matched, unknownType := false, false
		for _, inst := range names {
			keyPart, ok := strings.CutPrefix(rest, envPart(inst)+"_")
			if !ok {
				continue
			}
			if keyPart == "TYPE" {
				instances[inst]["type"] = value
				matched = true
				break
			}
			typeName, _ := instances[inst]["type"].(string)
			t, ok := TypeNamed(typeName)
			if !ok {
				unknownType = true // reported by the type check
				continue
			}
			path, f, ok := envKey(t.Spec.Fields, keyPart)
			if !ok {
				continue
			}
			if err := setPath(instances[inst], path, f, value); err != nil {
				errs = append(errs, &ConfigError{Key: name, Msg: err.Error()})
			}
			matched = true
			break
		}
		if !matched && !unknownType {
			errs = append(errs, &ConfigError{Key: name, Msg: "names no key of a configured adapter (SAMHUB_ADAPTERS_<NAME>_<KEY>, e.g. " + exampleEnv(instances) + ")"})
		}
	}
	return errors.Join(errs...)
}

func exampleEnv(instances map[string]map[string]any) string {
	for _, n := range sortedKeys(instances) {
		typeName, _ := instances[n]["type"].(string)
		if t, ok := TypeNamed(typeName); ok && len(t.Spec.Fields) > 0 {
			return EnvName(n, Leaves(t.Spec.Fields)[0])
		}
	}
	return "SAMHUB_ADAPTERS_CASESYS_URL"
}

// envKey finds the dotted key path an environment variable's key part
// names, and the field (a secret's field for <KEY>_FILE).
func envKey(fields []Field, part string) (string, Field, bool) {
	for _, p := range Leaves(fields) {
		if envPart(p) == part {
			f, ok := Lookup(fields, p)
			if !ok { // a secret's *_file
				f, _ = Lookup(fields, strings.TrimSuffix(p, "_file"))
				f = Field{Key: f.Key + "_file", Type: TypeString}
			}
			return p, f, true
		}
	}
	return "", Field{}, false
}

// setPath puts value at a dotted path of block, creating objects on the
// way. A secret set one way replaces the other way set in the file.
func setPath(block map[string]any, path string, f Field, value string) error {
	parts := strings.Split(path, ".")
	m := block
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	leaf := parts[len(parts)-1]
	var v any = value
	if f.Type == TypeObjects || f.Type == TypeMap {
		if err := yaml.Unmarshal([]byte(value), &v); err != nil {
			return fmt.Errorf("must be YAML or JSON for %s: %v", f.Type, err)
		}
	}
	if base, ok := strings.CutSuffix(leaf, "_file"); ok && f.Type == TypeString && strings.HasSuffix(f.Key, "_file") {
		delete(m, base)
	} else if f.Secret {
		delete(m, leaf+"_file")
	}
	m[leaf] = v
	return nil
}

// Masked is how a secret's value is printed.
const Masked = "********"

// Effective returns an instance's block as the hub reads it, for
// printing: defaults applied, secrets masked, a secret's *_file kept as
// the path it names. Errors are those of Type.Config.
func (t *Type) Effective(instance string, block map[string]any) (map[string]any, error) {
	if _, err := t.Config(instance, block); err != nil {
		return nil, err
	}
	norm, _ := Normalise(t.Spec.Fields, t.Spec.Forbidden, withoutType(block), "")
	mask(t.Spec.Fields, withoutType(block), norm)
	norm["type"] = t.Name
	return norm, nil
}

func mask(fields []Field, in, out map[string]any) {
	for _, f := range fields {
		switch {
		case f.Secret:
			if p, ok := in[f.Key+"_file"]; ok {
				delete(out, f.Key)
				out[f.Key+"_file"] = p
			} else if s, _ := out[f.Key].(string); s != "" {
				out[f.Key] = Masked
			}
		case f.Type == TypeObject:
			sub, _ := in[f.Key].(map[string]any)
			if o, ok := out[f.Key].(map[string]any); ok {
				mask(f.Fields, sub, o)
			}
		case f.Type == TypeObjects:
			ins, _ := in[f.Key].([]any)
			outs, _ := out[f.Key].([]any)
			for i := range outs {
				var sub map[string]any
				if i < len(ins) {
					sub, _ = ins[i].(map[string]any)
				}
				if o, ok := outs[i].(map[string]any); ok {
					mask(f.Fields, sub, o)
				}
			}
		}
	}
}
