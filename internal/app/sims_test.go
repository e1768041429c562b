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
