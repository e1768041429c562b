package epjsim_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
