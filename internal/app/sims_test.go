package app

import (
	"log/slog"
	"testing"

	"github.com/samhub/samhub/internal/config"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
)

func TestCaseSysSimulatorUploadCapFromConfig(t *testing.T) {
	for _, tc := range []struct {
		setting string
		want    int64
	}{{"", casesyssim.DefaultMaxUpload}, {"256MB", 256 << 20}} {
		sims, err := StartSimulators(config.Simulators{CaseSys: &config.SimConfig{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ClientID: "samhub", ClientSecret: "s", MaxUpload: tc.setting}}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		got := sims.CaseSys.MaxUploadBytes()
		sims.Close()
		if got != tc.want {
			t.Errorf("max_upload %q: cap %d, want %d", tc.setting, got, tc.want)
		}
	}
}

// simulators.digitalpost starts the Digital Post simulator with the
// configured citizens exempt from Digital Post.
func TestDigitalPostSimulatorFromConfig(t *testing.T) {
	sims, err := StartSimulators(config.Simulators{DigitalPost: &config.SimConfig{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ClientID: "samhub", ClientSecret: "s",
		Exempt: []string{"2512489996"}}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	if sims.DigitalPost == nil || sims.URLs["digitalpost"] == "" {
		t.Fatalf("not started: %+v", sims.URLs)
	}
	if got := sims.DigitalPost.Exempt(); len(got) != 1 || got[0] != "2512489996" {
		t.Errorf("exempt %v", got)
	}
}
