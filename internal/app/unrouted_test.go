package app_test

import (
	"os"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
)

// unrouted is samhub_letters_unrouted_total for medcom referrals as the
// hub's /metrics shows it, 0 when absent.
func unrouted(t *testing.T, h *hubtest.Hub) string {
	t.Helper()
	for _, line := range strings.Split(get(t, h.BaseURL+"/metrics"), "\n") {
		if strings.HasPrefix(line, `samhub_letters_unrouted_total{kind="referral",source="medcom"}`) {
			return strings.Fields(line)[1]
		}
	}
	return "0"
}

// A referral the routes send nowhere (here they take only the case
// system's own letters) is stored and skipped at every destination: the
// hub counts it for the SamhubLetterUnrouted alert and logs its id, where
// before only its journey said so.
func TestAReferralNoRouteTakesIsCountedAndLogged(t *testing.T) {
	var log logbuf.Buffer
	h := hubtest.Start(t, hubtest.WithLog(&log), hubtest.WithConfig(func(c *config.Config) {
		c.Routes[0].Match.Source = []string{"casesys"}
	}))
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter.xml", data)
	h.Eventually("the referral counted as unrouted", func() bool { return unrouted(t, h) == "1" })
	lines := log.Lines("no route sends it to any destination")
	if len(lines) != 1 || !strings.Contains(lines[0], "LTR00000000001") {
		t.Errorf("want one warning naming the letter, got %q", lines)
	}
	if n := len(h.CaseSys.Documents()); n != 0 {
		t.Errorf("%d documents filed for a letter no route takes", n)
	}
}

// A referral a route takes is not counted.
func TestARoutedReferralIsNotCountedAsUnrouted(t *testing.T) {
	h := hubtest.Start(t)
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter.xml", data)
	h.Eventually("the referral filed", func() bool { return len(h.CaseSys.Documents()) == 1 })
	if n := unrouted(t, h); n != "0" {
		t.Errorf("samhub_letters_unrouted_total = %s for a routed referral", n)
	}
}
