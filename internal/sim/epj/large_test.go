package epjsim_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// A request over the cap is answered 413 and stores nothing, as a real
// gateway refuses it; a large attachment under the cap is stored (in a file
// of its own, not in the state rewritten on every change) and read back
// intact, also after a restart.
func TestLargeBodiesAreCappedOrKeptIntact(t *testing.T) {
	dir := t.TempDir()
	s, err := epjsim.New(epjsim.Config{DataDir: dir, ClientID: clientID, ClientSecret: secret, MaxBodyBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pid, err := s.SeedPatient(epjsim.Patient{CPR: cprBruno, GivenName: "Bruno Test", FamilyName: "Elmer"})
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, base)
	with := func(id string, data []byte) string {
		c := communication(pid, id)
		return strings.Replace(c, `"payload":[`, `"payload":[{"contentAttachment":{"contentType":"application/pdf","data":"`+base64.StdEncoding.EncodeToString(data)+`"}},`, 1)
	}
	big := make([]byte, 3<<20) // 4 MiB in base64: over the cap
	_, _ = rand.Read(big)
	st, _, out := call(t, "POST", base+"/Communication", tok, "application/fhir+json", with("BIG", big), nil)
	if st != 413 || out["resourceType"] != "OperationOutcome" {
		t.Fatalf("over the cap: %d %v, want 413 with an OperationOutcome", st, out)
	}
	if len(s.CommunicationsFor("BIG")) != 0 {
		t.Fatal("a refused body was stored")
	}

	fits := big[:2<<20]
	st, _, created := call(t, "POST", base+"/Communication", tok, "application/fhir+json", with("FITS", fits), nil)
	if st != 201 {
		t.Fatalf("under the cap: %d %v", st, created)
	}
	sum := sha256.Sum256(fits)
	want := hex.EncodeToString(sum[:])
	check := func(s *epjsim.Server) {
		t.Helper()
		d, err := s.AttachmentDigests("FITS")
		if err != nil || len(d) != 1 || len(d[0]) != 1 || d[0][0] != want {
			t.Fatalf("digests %v (%v), want [[%s]]", d, err, want)
		}
		if c := s.CommunicationsFor("FITS"); len(c) != 1 || !strings.Contains(string(c[0]), base64.StdEncoding.EncodeToString(fits[:1023])) {
			t.Fatal("the stored Communication does not carry its data")
		}
	}
	check(s)
	rec := filepath.Join(dir, "records", "Communication-"+created["id"].(string)+".json")
	if fi, err := os.Stat(rec); err != nil || fi.Size() > 64<<10 {
		t.Errorf("the resource's file: %v (%v); the attachment should be beside it", fi, err)
	}
	st, _, read := call(t, "GET", base+"/Communication/"+created["id"].(string), tok, "", "", nil)
	if st != 200 || !strings.Contains(mustJSON(t, read), base64.StdEncoding.EncodeToString(fits)) {
		t.Fatalf("read: %d, without the data", st)
	}
	// A value longer than the read buffer (64 KB) but under the lift size
	// (256 KB) stays in its resource, whole.
	mid := big[:150<<10]
	st, _, created = call(t, "POST", base+"/Communication", tok, "application/fhir+json", with("MIDDLE", mid), nil)
	if st != 201 {
		t.Fatalf("a 200 KB value: %d %v", st, created)
	}
	if c := s.CommunicationsFor("MIDDLE"); len(c) != 1 || !strings.Contains(string(c[0]), `"data":"`+base64.StdEncoding.EncodeToString(mid)+`"`) {
		t.Fatal("a 200 KB value is not kept whole in its resource")
	}
	s.Close()
	again, err := epjsim.New(epjsim.Config{DataDir: dir, ClientID: clientID, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	check(again)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// DataDigests finds every "data":"…" value, and only those, however the
// body arrives: in one piece or byte by byte, with keys that only look
// alike and a quote-free stretch longer than its read buffer before a value.
func TestDataDigestsFindEveryDataValue(t *testing.T) {
	b64 := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	body := `{"resourceType":"Communication","kind":"data","metadata":"` + b64(30) + `",` +
		`"payload":[{"contentAttachment":{"data":"` + b64(1) + `"}},` +
		`{"contentString":"` + strings.Repeat("x", 70<<10) + `"},` +
		`{"contentAttachment":{"data":"` + b64(200<<10) + `","title":"data"}},` +
		`{"contentAttachment":{"data":""}}],"note":"\"data\":"}`
	var want []string
	for _, m := range regexp.MustCompile(`"data":"([^"]*)"`).FindAllStringSubmatch(body, -1) {
		raw, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		want = append(want, hex.EncodeToString(sum[:]))
	}
	if len(want) != 3 {
		t.Fatalf("reference found %d values, the body has 3", len(want))
	}
	for name, r := range map[string]io.Reader{
		"whole":        strings.NewReader(body),
		"byte by byte": iotest.OneByteReader(strings.NewReader(body)),
		"halves":       iotest.HalfReader(strings.NewReader(body)),
	} {
		got, err := epjsim.DataDigests(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: digests %v, want %v", name, got, want)
		}
	}
}

// BenchmarkDataDigests: the bench's EPJ stand-in reads every letter's
// Communication (about 30 KB for the 10 KB letter) with it.
func BenchmarkDataDigests(b *testing.B) {
	raw := make([]byte, 10<<10)
	_, _ = rand.Read(raw)
	body := `{"resourceType":"Communication","payload":[{"contentString":"` + strings.Repeat("tekst ", 1300) +
		`"},{"contentAttachment":{"contentType":"application/xml","data":"` + base64.StdEncoding.EncodeToString(raw) + `"}}]}`
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := epjsim.DataDigests(strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}
