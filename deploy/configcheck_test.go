package deploy

import (
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The unit and the Kubernetes pod check the configuration they are about
// to run with `samhub config check` before the hub starts; deploy/check.sh
// runs the unit's line for real against samhub.yaml beside it.
func TestDeploymentsCheckTheirConfiguration(t *testing.T) {
	unit := unitSettings(t, "systemd/samhub.service")
	pre, start := unit["ExecStartPre"], unit["ExecStart"]
	if len(pre) != 4 || !slices.Equal(pre[:3], []string{"/usr/local/bin/samhub", "config", "check"}) || len(start) == 0 || pre[3] != start[len(start)-1] {
		t.Errorf("ExecStartPre %q must be `samhub config check` of the file ExecStart %q serves", pre, start)
	}

	raw, err := os.ReadFile("kubernetes/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type container struct {
		Name         string   `yaml:"name"`
		Image        string   `yaml:"image"`
		Args         []string `yaml:"args"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					InitContainers []container `yaml:"initContainers"`
					Containers     []container `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &dep); err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("want one init container checking the configuration and one hub container")
	}
	ic, hub := pod.InitContainers[0], pod.Containers[0]
	if !slices.Equal(ic.Args, []string{"config", "check", hub.Args[len(hub.Args)-1]}) || ic.Image != hub.Image {
		t.Errorf("init container %s runs %q with %s: want `config check` of the hub's file %s with the hub's image %s", ic.Name, ic.Args, ic.Image, hub.Args[len(hub.Args)-1], hub.Image)
	}
	mounts := func(c container) map[string]string {
		m := map[string]string{}
		for _, v := range c.VolumeMounts {
			m[v.Name] = v.MountPath
		}
		return m
	}
	im := mounts(ic)
	for name, path := range mounts(hub) {
		if name != "data" && name != "tmp" && im[name] != path {
			t.Errorf("the check does not see volume %s at %s as the hub does (secrets and configuration must be the same)", name, path)
		}
	}
}
