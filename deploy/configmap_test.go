package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/samhub/samhub/internal/config"
)

// TestClusterConfigLoads checks the ConfigMap's samhub.yaml with the hub's
// own configuration loader, so the shipped example stays valid.
func TestClusterConfigLoads(t *testing.T) {
	raw, err := os.ReadFile("kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "samhub.yaml")
	if err := os.WriteFile(p, []byte(cm.Data["samhub.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatalf("the ConfigMap's samhub.yaml does not load: %v", err)
	}
	if c.NATS.URL == "" || c.NATS.Replicas != 3 {
		t.Errorf("cluster mode expected: url %q replicas %d", c.NATS.URL, c.NATS.Replicas)
	}
}

// TestDemoConfigLoads keeps `make run`'s configuration valid.
func TestDemoConfigLoads(t *testing.T) {
	if _, err := config.Load("demo/samhub.yaml"); err != nil {
		t.Fatal(err)
	}
}
