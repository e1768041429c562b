package config_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/samhub/samhub/internal/config"
	_ "github.com/samhub/samhub/internal/plugins" // every adapter type: the schema covers them all
)

// The generated files in the tree are what the specs make now.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	schema, err := config.Schema()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]byte{
		"../../schemas/samhub.schema.json": schema,
		"../../docs/configuration.md":      []byte(config.Reference()),
	} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date with the adapters' specs and the configuration types: run `make generate`", strings.TrimPrefix(path, "../../"))
		}
	}
}

// shippedExamples are the configuration files deploy/ ships, by name.
func shippedExamples(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, p := range []string{"../../deploy/demo/samhub.yaml", "../../deploy/systemd/samhub.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(p, "../../")] = b
	}
	raw, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil || cm.Data["samhub.yaml"] == "" {
		t.Fatalf("configmap.yaml: %v", err)
	}
	out["deploy/kubernetes/configmap.yaml"] = []byte(cm.Data["samhub.yaml"])
	return out
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile("../../schemas/samhub.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("samhub.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("samhub.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asJSON turns a YAML document into the JSON value the schema validates.
func asJSON(t *testing.T, y []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The schema in schemas/ accepts every shipped example, and refuses what
// `samhub config check` refuses inside an adapter block, so an editor
// shows the same mistakes.
func TestSchemaValidatesShippedExamples(t *testing.T) {
	s := compileSchema(t)
	examples := shippedExamples(t)
	for name, y := range examples {
		if err := s.Validate(asJSON(t, y)); err != nil {
			t.Errorf("%s does not match the schema: %v", name, err)
		}
	}
	demo := string(examples["deploy/demo/samhub.yaml"])
	for what, bad := range map[string]string{
		"misspelt adapter key": strings.Replace(demo, "    poll_interval: 200ms", "    pol_interval: 200ms", 1),
		"wrong type":           strings.Replace(demo, "    poll_interval: 200ms", "    poll_interval: soon", 1),
		"unknown adapter type": strings.Replace(demo, "    type: medcom", "    type: medcomm", 1),
		"misspelt top key":     demo + "\nhtpp: {listen: x}\n",
		"bad enum":             strings.Replace(demo, "    client_id: samhub\n    client_secret: demo-case-secret", "    client_id: samhub\n    client_secret: demo-case-secret\n    on_missing_case: ignore", 1),
	} {
		if bad == demo {
			t.Fatalf("%s: the edit did not apply", what)
		}
		if err := s.Validate(asJSON(t, []byte(bad))); err == nil {
			t.Errorf("the schema accepts a %s", what)
		}
	}
}
