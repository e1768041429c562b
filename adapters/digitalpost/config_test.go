package digitalpost_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/digitalpost"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
)

// The block is checked as `samhub config check` checks it: every mistake
// names its key.
func TestConfigMistakesNameTheKey(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"url": "http://127.0.0.1:1", "client_id": "samhub", "client_secret": "s",
			"sender": map[string]any{"cvr": "29189846", "name": "Odense Kommune"}}
	}
	if err := adapters.Check("digitalpost", "parents", base()); err != nil {
		t.Fatalf("a minimal block: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		key  string
	}{
		{"no sender", func(b map[string]any) { delete(b, "sender") }, "adapters.parents.sender.cvr"},
		{"cvr not 8 digits", func(b map[string]any) { b["sender"] = map[string]any{"cvr": "1234", "name": "x"} }, "adapters.parents.sender.cvr"},
		{"https without the function certificate", func(b map[string]any) { b["url"] = "https://exttest.serviceplatformen.dk" }, "adapters.parents.tls.cert_file"},
		{"a label with a CPR number", func(b map[string]any) { b["label"] = "Brev til 1509819996" }, "adapters.parents.label"},
		{"a label too long", func(b map[string]any) { b["label"] = strings.Repeat("a", 257) }, "adapters.parents.label"},
		{"an unknown choice", func(b map[string]any) { b["choice"] = "fysisk" }, "adapters.parents.choice"},
		{"automatic without the print agreement", func(b map[string]any) { b["choice"] = "automatic" }, "adapters.parents.print.forsendelse_type"},
		{"a misspelt key", func(b map[string]any) { b["lable"] = "x" }, "adapters.parents.lable"},
		{"language", func(b map[string]any) { b["language"] = "dansk" }, "adapters.parents.language"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.edit(b)
			err := adapters.Check("digitalpost", "parents", b)
			var ce *adapters.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("got %v, want an error naming %s", err, tc.key)
			}
		})
	}
}

// The defaults are what the reference documents, and New needs a state
// store for the key of its message UUIDs.
func TestDefaultsAndNew(t *testing.T) {
	c := adapters.Defaults[digitalpost.Config]()
	if c.Choice != "digital_post" || c.Label != "Brev fra kommunen" || c.Scope != "http://entityid.kombit.dk/service/kombipostafsend/1" || c.Language != "da" || c.Mandatory {
		t.Errorf("defaults %+v", c)
	}
	c.URL, c.ClientID, c.ClientSecret, c.Sender = "http://127.0.0.1:1", "samhub", "s", digitalpost.Sender{CVR: "29189846", Name: "Odense Kommune"}
	if _, err := digitalpost.New(adapters.Deps{Name: "parents"}, c); err == nil || !strings.Contains(err.Error(), "state store") {
		t.Errorf("New without a state store: %v", err)
	}
	a, err := digitalpost.New(adapters.Deps{Name: "parents", State: newEnv(t, simConfig()).state}, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(context.Background()); err == nil {
		t.Error("ready although nothing answers at the url")
	}
	e := newEnv(t, simConfig())
	if r, ok := e.sink(nil).(adapters.Readiness); !ok || r.Ready(context.Background()) != nil {
		t.Error("not ready against a running service")
	}
}

func simConfig() digitalpostsim.Config { return digitalpostsim.Config{} }
