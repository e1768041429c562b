package console

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCatalogueIsComplete(t *testing.T) {
	mojibake := regexp.MustCompile(`Ã|Â|\?\?|\x{FFFD}`)
	for key, m := range messages {
		for i, s := range m {
			if strings.TrimSpace(s) == "" {
				t.Errorf("%s: language %d is empty", key, i)
			}
			if !utf8.ValidString(s) || mojibake.MatchString(s) {
				t.Errorf("%s: %q is not clean UTF-8", key, s)
			}
		}
		if strings.Count(m[0], "%") != strings.Count(m[1], "%") {
			t.Errorf("%s: the languages take different arguments: %q / %q", key, m[0], m[1])
		}
	}
	for code, e := range explanations {
		for i := range 2 {
			if e.what[i] == "" || e.do[i] == "" {
				t.Errorf("explanation %s: language %d incomplete", code, i)
			}
		}
	}
}

func TestExplainCode(t *testing.T) {
	e := explainCode("en", "consent_missing", "")
	if e.Do != "Record the consent, then replay." || !e.Consent {
		t.Errorf("consent_missing: %+v", e)
	}
	if e := explainCode("da", "consent_missing", ""); e.Do != "Registrér samtykket, og send så brevet igen." {
		t.Errorf("consent_missing in Danish: %+v", e)
	}
	if e := explainCode("en", "case_closed", ""); !strings.Contains(e.Do, "reopen the case") {
		t.Errorf("case_closed: %+v", e)
	}
	// An unknown code shows the adapter's own reason and general advice.
	e = explainCode("en", "new_code", "the system said no")
	if e.What != "the system said no" || !strings.Contains(e.Do, "then replay") || e.Consent {
		t.Errorf("unknown code: %+v", e)
	}
}

func TestTranslate(t *testing.T) {
	if got := tr("da", "q.replayed", 2); got != "2 brev(e) sendt igen." {
		t.Errorf("q.replayed da: %q", got)
	}
	if got := tr("en", "no.such.key"); got != "no.such.key" {
		t.Errorf("missing key: %q", got)
	}
	if got := trOr("en", "step.new-step", "new-step"); got != "new-step" {
		t.Errorf("fallback: %q", got)
	}
}

func TestTodayCounter(t *testing.T) {
	day := time.Date(2026, 3, 4, 9, 0, 0, 0, time.Local)
	var c todayCounter
	// The process started today: all of its count is today's.
	n, since := c.count(day, 7, float64(day.Add(-time.Hour).Unix()))
	if n != 7 || !since.Equal(day.Add(-time.Hour)) {
		t.Errorf("started today: %v since %v", n, since)
	}
	if n, _ := c.count(day.Add(time.Hour), 10, float64(day.Add(-time.Hour).Unix())); n != 10 {
		t.Errorf("later the same day: %v", n)
	}
	// Next day: the first look is the baseline.
	next := day.Add(24 * time.Hour)
	n, since = c.count(next, 12, float64(day.Add(-time.Hour).Unix()))
	if n != 0 || !since.Equal(next) {
		t.Errorf("first look of a new day: %v since %v", n, since)
	}
	if n, _ := c.count(next.Add(time.Hour), 15, float64(day.Add(-time.Hour).Unix())); n != 3 {
		t.Errorf("later that day: %v, want 3", n)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/console/queue": "/console/queue", "//evil.example/console/": "", "https://evil.example/": "",
		"/console/../metrics": "", "/console/\\evil": "", "": "",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormaliseCPR(t *testing.T) {
	for in, want := range map[string]string{"2509479989": "2509479989", "250947-9989": "2509479989", " 0703921VJ4 ": "0703921VJ4", "0703921vj4": "0703921VJ4", "25094799": "", "abcdefghij": "", "2509479989x": ""} {
		got, ok := normaliseCPR(in)
		if got != want || ok != (want != "") {
			t.Errorf("normaliseCPR(%q) = %q, %v", in, got, ok)
		}
	}
}
