package config

import (
	"bytes"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/samhub/samhub/adapters"
)

// Effective renders the configuration as the hub runs it, as YAML:
// defaults applied, SAMHUB_* overrides in, each adapter block as its spec
// reads it. Secrets are masked: adapter keys their spec marks secret (a
// *_file key shows the path, never the content), and top-level keys whose
// name holds "secret" or "password" or ends in "_hash". Adapter blocks
// must pass CheckAdapters.
func (c *Config) Effective() ([]byte, error) {
	n, err := valueNode(reflect.ValueOf(*c), "")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func masked(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_file") || strings.HasSuffix(k, "_env") {
		return false
	}
	return strings.Contains(k, "secret") || strings.Contains(k, "password") || strings.HasSuffix(k, "_hash")
}

func valueNode(v reflect.Value, key string) (*yaml.Node, error) {
	if v.Type() == durationType {
		return scalarNode(time.Duration(v.Int()).String()), nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		return valueNode(v.Elem(), key)
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		if err := structInto(m, v); err != nil {
			return nil, err
		}
		return m, nil
	case reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Len() == 0 {
			seq.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			e, err := valueNode(v.Index(i), key)
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, e)
		}
		return seq, nil
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			e, err := valueNode(v.MapIndex(k), k.String())
			if err != nil {
				return nil, err
			}
			m.Content = append(m.Content, scalarNode(k.String()), e)
		}
		return m, nil
	}
	if masked(key) && !v.IsZero() {
		return scalarNode(adapters.Masked), nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return n, nil
}

func structInto(m *yaml.Node, v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
		if name == "-" || (!sf.IsExported() && !sf.Anonymous) {
			continue
		}
		if opts == "squash" {
			if err := structInto(m, v.Field(i)); err != nil {
				return err
			}
			continue
		}
		var e *yaml.Node
		var err error
		if name == "adapters" && sf.Type == reflect.TypeFor[map[string]map[string]any]() {
			e, err = adapterBlocks(v.Field(i).Interface().(map[string]map[string]any))
		} else {
			e, err = valueNode(v.Field(i), name)
		}
		if err != nil {
			return err
		}
		m.Content = append(m.Content, scalarNode(name), e)
	}
	return nil
}

func adapterBlocks(blocks map[string]map[string]any) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, name := range sortedKeys(blocks) {
		typ, _ := blocks[name]["type"].(string)
		t, ok := adapters.TypeNamed(typ)
		if !ok {
			return nil, &Error{Key: "adapters." + name + ".type", Msg: "unknown adapter type " + typ}
		}
		eff, err := t.Effective(name, blocks[name])
		if err != nil {
			return nil, err
		}
		n := &yaml.Node{}
		if err := n.Encode(eff); err != nil {
			return nil, err
		}
		m.Content = append(m.Content, scalarNode(name), n)
	}
	return m, nil
}

func scalarNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

var durationType = reflect.TypeFor[time.Duration]()
