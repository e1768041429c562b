package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// k8sObject is the part of a Kubernetes object these checks read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data      map[string]string `yaml:"data"`
	Resources []string          `yaml:"resources"`
	Spec      struct {
		Replicas     *int `yaml:"replicas"`
		MinAvailable *int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Ports []struct {
			Name       string `yaml:"name"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int  `yaml:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  bool `yaml:"automountServiceAccountToken"`
	SecurityContext               struct {
		RunAsNonRoot   bool `yaml:"runAsNonRoot"`
		RunAsUser      int  `yaml:"runAsUser"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			RunAsNonRoot             bool  `yaml:"runAsNonRoot"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string                 `yaml:"name"`
		ConfigMap *struct{ Name string } `yaml:"configMap"`
		Secret    *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// loadK8s parses every YAML document under kubernetes/, keyed by kind.
func loadK8s(t *testing.T) (map[string]k8sObject, []string) {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/: %v", err)
	}
	objs := map[string]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" {
				t.Errorf("%s document %d: apiVersion and kind are required", f, i)
			}
			if o.Kind != "Kustomization" && o.Metadata.Name == "" {
				t.Errorf("%s document %d: metadata.name is required", f, i)
			}
			if _, dup := objs[o.Kind]; dup {
				t.Errorf("%s: a second %s", f, o.Kind)
			}
			objs[o.Kind] = o
		}
	}
	return objs, files
}

func TestKubernetesManifests(t *testing.T) {
	objs, files := loadK8s(t)
	for _, kind := range []string{"Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Kustomization"} {
		if _, ok := objs[kind]; !ok {
			t.Fatalf("no %s in kubernetes/", kind)
		}
	}
	if _, ok := objs["Secret"]; ok {
		t.Errorf("a Secret is committed: secrets are referenced, never stored here")
	}
	for kind, o := range objs {
		if kind != "Namespace" && kind != "Kustomization" && o.Metadata.Namespace != "samhub" {
			t.Errorf("%s %s: namespace %q, want samhub", kind, o.Metadata.Name, o.Metadata.Namespace)
		}
	}
	kust := objs["Kustomization"]
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !contains(kust.Resources, base) {
			t.Errorf("kustomization.yaml does not list %s", base)
		}
	}

	dep := objs["Deployment"]
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Fatalf("Deployment replicas must be 2")
	}
	if !subset(dep.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels) {
		t.Errorf("Deployment selector does not match its pod labels")
	}
	pod := dep.Spec.Template.Spec
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 || pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext: want runAsNonRoot, a non-zero runAsUser and RuntimeDefault seccomp")
	}
	if pod.AutomountServiceAccountToken {
		t.Errorf("the hub needs no Kubernetes API token")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe must GET /readyz")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe must GET /healthz")
	}
	sc := c.SecurityContext
	if !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext: want read-only root FS, no privilege escalation, drop ALL")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("container resources: want cpu and memory requests and a memory limit")
	}
	portNames := map[string]bool{}
	for _, p := range c.Ports {
		portNames[p.Name] = true
		if p.ContainerPort != 8080 {
			t.Errorf("container port %d, want 8080", p.ContainerPort)
		}
	}
	for _, pr := range []*probe{c.ReadinessProbe, c.LivenessProbe} {
		if pr != nil && !portNames[pr.HTTPGet.Port] {
			t.Errorf("probe port %q is not a container port", pr.HTTPGet.Port)
		}
	}

	// Volumes: every mount has a volume; config from our ConfigMap; the rest
	// of the secrets by reference; writable paths only on emptyDirs.
	vols := map[string]bool{}
	cm := objs["ConfigMap"]
	for _, v := range pod.Volumes {
		vols[v.Name] = true
		if v.ConfigMap != nil && v.ConfigMap.Name != cm.Metadata.Name {
			t.Errorf("volume %s uses ConfigMap %q, not %q", v.Name, v.ConfigMap.Name, cm.Metadata.Name)
		}
		if v.Secret != nil && v.Secret.SecretName == "" {
			t.Errorf("volume %s: secretName is empty", v.Name)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		if !vols[m.Name] {
			t.Errorf("volumeMount %s has no volume", m.Name)
		}
		mounts[m.MountPath] = m.Name
	}
	configPath := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			configPath = c.Args[i+1]
		}
	}
	if _, ok := cm.Data[filepath.Base(configPath)]; !ok || mounts[filepath.Dir(configPath)] == "" {
		t.Errorf("--config %q is not a key of the mounted ConfigMap", configPath)
	}

	svc := objs["Service"]
	var svcRaw struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
		} `yaml:"spec"`
	}
	b, _ := os.ReadFile("kubernetes/service.yaml")
	if err := yaml.Unmarshal(b, &svcRaw); err != nil {
		t.Fatal(err)
	}
	if len(svcRaw.Spec.Selector) == 0 || !subset(svcRaw.Spec.Selector, dep.Spec.Template.Metadata.Labels) {
		t.Errorf("Service selector does not select the hub's pods")
	}
	for _, p := range svc.Spec.Ports {
		if !portNames[p.TargetPort] {
			t.Errorf("Service targetPort %q is not a container port", p.TargetPort)
		}
	}

	pdb := objs["PodDisruptionBudget"]
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable < 1 || *pdb.Spec.MinAvailable >= *dep.Spec.Replicas {
		t.Errorf("PodDisruptionBudget minAvailable must keep one pod and allow one to go")
	}
	if !subset(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels) {
		t.Errorf("PodDisruptionBudget selector does not select the hub's pods")
	}

	checkClusterConfig(t, cm.Data["samhub.yaml"], pod.TerminationGracePeriodSeconds, mounts)
}

// checkClusterConfig checks the samhub.yaml carried by the ConfigMap: cluster
// mode over TLS with an NKey, every secret a file under a mounted Secret, and
// a grace period the drain fits in.
func checkClusterConfig(t *testing.T, text string, graceSeconds int, mounts map[string]string) {
	t.Helper()
	var cfg struct {
		HTTP struct {
			Listen string `yaml:"listen"`
		} `yaml:"http"`
		NATS struct {
			URL      string `yaml:"url"`
			NKeyFile string `yaml:"nkey_file"`
			Creds    string `yaml:"creds_file"`
			TLS      struct {
				CAFile   string `yaml:"ca_file"`
				CertFile string `yaml:"cert_file"`
				KeyFile  string `yaml:"key_file"`
			} `yaml:"tls"`
			Replicas int `yaml:"replicas"`
		} `yaml:"nats"`
		Pipeline struct {
			ShutdownGrace string `yaml:"shutdown_grace"`
			SinkTimeout   string `yaml:"sink_timeout"`
		} `yaml:"pipeline"`
	}
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatalf("ConfigMap samhub.yaml: %v", err)
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("ConfigMap samhub.yaml: %v", err)
	}
	for _, u := range strings.Split(cfg.NATS.URL, ",") {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "tls" || pu.Host == "" {
			t.Errorf("nats.url %q: every server must be a tls:// URL", u)
		}
	}
	if cfg.NATS.NKeyFile == "" && cfg.NATS.Creds == "" {
		t.Errorf("nats: set nkey_file or creds_file")
	}
	if cfg.NATS.Replicas != 3 {
		t.Errorf("nats.replicas = %d, want 3 on the 3-node cluster", cfg.NATS.Replicas)
	}
	for _, f := range []string{cfg.NATS.NKeyFile, cfg.NATS.TLS.CAFile, cfg.NATS.TLS.CertFile, cfg.NATS.TLS.KeyFile} {
		if f == "" || mounts[filepath.Dir(f)] == "" {
			t.Errorf("nats file %q is not under a mounted volume", f)
		}
	}
	grace, err1 := time.ParseDuration(cfg.Pipeline.ShutdownGrace)
	sink, err2 := time.ParseDuration(cfg.Pipeline.SinkTimeout)
	if err1 != nil || err2 != nil || time.Duration(graceSeconds)*time.Second <= grace+sink {
		t.Errorf("terminationGracePeriodSeconds %d must exceed shutdown_grace %q + sink_timeout %q", graceSeconds, cfg.Pipeline.ShutdownGrace, cfg.Pipeline.SinkTimeout)
	}
	// No secret values: any key naming a secret must be a *_file path under a mount.
	secretKey := regexp.MustCompile(`(?i)(secret|password|token|seed)`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch tv := v.(type) {
		case map[string]any:
			for k, e := range tv {
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range tv {
				walk(path+"[]", e)
			}
		case string:
			key := path[strings.LastIndex(path, ".")+1:]
			if secretKey.MatchString(key) && !strings.HasSuffix(key, "_file") {
				t.Errorf("samhub.yaml %s holds a secret value; use %s_file and a Secret", path, key)
			}
			if strings.HasSuffix(key, "_file") && mounts[filepath.Dir(tv)] == "" {
				t.Errorf("samhub.yaml %s = %q is not under a mounted volume", path, tv)
			}
		}
	}
	walk("", raw)
}

func TestContainerfile(t *testing.T) {
	f, err := os.Open("container/Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var froms, users []string
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
		switch strings.ToUpper(strings.Fields(line)[0]) {
		case "FROM":
			froms = append(froms, line)
		case "USER":
			users = append(users, strings.Fields(line)[1])
		case "HEALTHCHECK":
			t.Errorf("HEALTHCHECK cannot work without a shell in the runtime image")
		}
	}
	all := strings.Join(lines, "\n")
	if len(froms) < 2 || !strings.Contains(froms[0], "golang:1.26") {
		t.Errorf("want a multi-stage build from golang:1.26, got %v", froms)
	}
	if last := froms[len(froms)-1]; !strings.Contains(last, "distroless/static") && !strings.Contains(last, "scratch") {
		t.Errorf("runtime image %q: want distroless/static or scratch", last)
	}
	if len(users) == 0 || users[len(users)-1] == "root" || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("final USER must be non-root, got %v", users)
	}
	for _, want := range []string{"CGO_ENABLED=0", "EXPOSE 8080", "VOLUME", "./cmd/samhub"} {
		if !strings.Contains(all, want) {
			t.Errorf("Containerfile lacks %q", want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// subset reports whether every label in sel is in labels with the same value.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
