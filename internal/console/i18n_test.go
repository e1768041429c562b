package console

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/samhub/samhub/adapters"
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

// auditWritten finds the actions the hub writes to the audit log in its
// own source, so an action added later without a translation fails here.
func auditWritten(t *testing.T) []string {
	t.Helper()
	lit := regexp.MustCompile(`(?:Action:\s*|c\.audit\(ctx, who, |action(?:, target)? :?= )"([a-z]+(?:-[a-z]+)*)"`)
	seen := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	return out
}

// The auditor reads every record in the console's language: each action
// the hub writes, and the results and reasons the hub words itself.
func TestAuditLogSpeaksDanish(t *testing.T) {
	actions := auditWritten(t)
	for _, must := range []string{"put-back", "meeting-move", "agenda-export", "login-throttled", "api-token-throttled"} {
		if !slices.Contains(actions, must) {
			t.Fatalf("the source scan missed %q (found %v)", must, actions)
		}
	}
	for _, a := range actions {
		if got := trOr("da", "a.action."+a, ""); got == "" {
			t.Errorf("audit action %q has no Danish words", a)
		}
	}
	for _, r := range []string{"ok", "denied", "shown", "searched", "recorded", "started", "refused"} {
		if got := auditResult("da", r); got == r && r != "ok" {
			t.Errorf("audit result %q shown untranslated", r)
		}
	}
	for in, want := range map[string]string{
		"this address: 6 failed logins; next attempt in 1m4s":                             "denne adresse: 6 mislykkede login; næste forsøg om 1 minut og 4 sekunder",
		"this user name: 11 failed logins; next attempt in 5m0s":                          "dette brugernavn: 11 mislykkede login; næste forsøg om 5 minutter",
		"all addresses together: more than 5 login attempts a second; next attempt in 1s": "alle adresser tilsammen: mere end 5 loginforsøg i sekundet; næste forsøg om 1 sekund",
		"21 wrong API tokens from this address; next attempt in 15m0s":                    "21 forkerte API-nøgler fra denne adresse; næste forsøg om 15 minutter",
		adapters.ErrUnknownInput.Error():                                                  "ingen afvist fil med det id (en anden har måske håndteret den)",
		"wrong password":                                                                  "forkert adgangskode",
		// A person's own reason is shown as written.
		"the family called": "the family called",
	} {
		if got := auditReason("da", in); got != want {
			t.Errorf("reason %q in Danish: %q, want %q", in, got, want)
		}
	}
	if got := auditReason("da", adapters.ErrAnswered.Error()); !strings.HasPrefix(got, "afsenderen har allerede fået svar") {
		t.Errorf("put-back refused as answered, in Danish: %q", got)
	}
	// The login page says a throttle's wait in words, too.
	if got := tr("da", "login.throttled", waitWords("da", 2*time.Second)); got != "For mange mislykkede forsøg. Prøv igen om 2 sekunder." {
		t.Errorf("login throttled in Danish: %q", got)
	}
	if got := waitWords("en", 64*time.Second); got != "1 minute and 4 seconds" {
		t.Errorf("wait in English: %q", got)
	}
}
