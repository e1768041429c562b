package acceptance

// The world around the hub: the parties, the simulators, the hub as a child
// process, and the check every scenario ends with.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/httpapi"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
)

// bins are the samhub and samhubctl binaries, built once for the package.
var bins struct{ samhub, samhubctl string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "samhub-acceptance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.samhub, bins.samhubctl = filepath.Join(dir, "samhub"), filepath.Join(dir, "samhubctl")
	for bin, pkg := range map[string]string{bins.samhub: "github.com/samhub/samhub/cmd/samhub", bins.samhubctl: "github.com/samhub/samhub/cmd/samhubctl"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The council's own MedCom addresses: its own (the hub's self) and the
// municipality's children and youth department, which GPs also write to.
var (
	theCouncil = medcompeer.Org{Name: "Samrådet for Børn og Unge", GLN: "5790001382445", SOR: "1144561000016002", Municipality: "461"}
	bornOgUnge = medcompeer.Org{Name: "Odense Kommune, Børn og Unge", GLN: "5790000000012", Municipality: "461"}
)

// gp is a general practice: its MedCom identity and the formats the
// receiver directory lists for it (none: not in the directory).
type gp struct {
	medcompeer.Party
	Formats []string
}

// The GP practices, all fictitious. Ærø takes XDIS91, Østergade the FHIR
// CareCommunication in XML; Søndergade is not in the receiver directory,
// so it gets a CareCommunication in XML, the default for GPs.
var (
	gpAero   = gp{medcompeer.Party{Name: "Lægehuset Ærø", Role: "gp", GLN: "5790000000005", SOR: "543210987654321", ProviderNumber: "123456"}, []string{"xdis91"}}
	gpOster  = gp{medcompeer.Party{Name: "Lægerne i Østergade", Role: "gp", GLN: "5790000000029", SOR: "543210987654338", ProviderNumber: "234567"}, []string{"fhir-xml"}}
	gpSonder = gp{medcompeer.Party{Name: "Lægeklinikken Søndergade", Role: "gp", GLN: "5790000000036", SOR: "543210987654345", ProviderNumber: "345678"}, nil}
	// Child and adolescent psychiatry: the EPJ gateway's recipient, and a
	// MedCom endpoint the peer plays so a stray letter to it would show.
	childPsychiatry = gp{medcompeer.Party{Name: "Børne- og Ungdomspsykiatrien", Role: "region", GLN: "5790000000043", SOR: "6071000016008"}, []string{"fhir-xml"}}
)

// child is a child the council works with: MedCom's fictitious test CPR
// numbers with made-up names.
type child struct {
	Given, Family string
	CPR           string
	ReplacementID string // X-eCPR, for a child without a CPR number
}

func (c child) Name() string { return strings.TrimSpace(c.Given + " " + c.Family) }

// ID is how the hub and the systems identify the child.
func (c child) ID() string {
	if c.CPR != "" {
		return c.CPR
	}
	return c.ReplacementID
}

func (c child) patient() letter.Patient {
	return letter.Patient{CPR: c.CPR, ReplacementID: c.ReplacementID, GivenName: c.Given, FamilyName: c.Family}
}

var (
	aase   = child{Given: "Åse Test", Family: "Kjærgård", CPR: "1509819996"}
	mads   = child{Given: "Mads Test", Family: "Bøgelund", CPR: "2512489996"}
	bruno  = child{Given: "Bruno Test", Family: "Elmer", CPR: "2509479989"}
	caecar = child{Given: "Cæcar Test", Family: "Østergård", CPR: "2311143995"}
	// birgit has just arrived in Denmark: a replacement CPR (X-eCPR) and no
	// known family name.
	birgit = child{Given: "Birgit", ReplacementID: "0703921VJ4"}
)

// Tokens of the hub's API users.
const (
	coordinatorToken = "acceptance-coordinator-token"
	auditorToken     = "acceptance-auditor-token"
	coordinatorEmail = "koordinator@samraad.example"
	parentsEmail     = "foraelder.test@example.org"
	councilCVR       = "29189846" // the municipality as Digital Post's sender (fictitious)
)

// world is one scenario's hub with everyone around it.
type world struct {
	t    *testing.T
	dir  string
	mbox string // the hub's MedCom drop folder

	cases  *casesyssim.Server
	epj    *epjsim.Server
	mail   *mailtest.SMTPServer
	peer   *medcompeer.Peer
	hub    *hubProcess
	post   *digitalpostsim.Server // Digital Post, when the scenario asks for it (withDigitalPost)
	extra  []string               // configuration blocks the scenario adds (withConfig)
	medcom []string               // settings of the MedCom mailbox the scenario adds (withMedCom)

	caseURL, epjURL, postURL string
	epjPatients              map[string]string // child id → EPJ Patient id

	mu       sync.Mutex
	expected map[string][]string // child id → GLNs of the parties the child's letters may reach
}

// worldOption adds a party to a scenario's world.
type worldOption func(w *world)

// withConfig adds top-level YAML blocks to the hub's configuration (the
// council's, say).
func withConfig(blocks ...string) worldOption {
	return func(w *world) { w.extra = append(w.extra, blocks...) }
}

// withMedCom adds settings (key: value) to the MedCom mailbox's block.
func withMedCom(settings ...string) worldOption {
	return func(w *world) { w.medcom = append(w.medcom, settings...) }
}

// withDigitalPost adds Digital Post (Serviceplatformen's SF1601
// simulator) with the citizens whose CPR numbers are given exempt from it,
// and the route of recommendations to the parents through it.
func withDigitalPost(exempt ...string) worldOption {
	return func(w *world) {
		var err error
		if w.post, err = digitalpostsim.New(digitalpostsim.Config{DataDir: filepath.Join(w.dir, "digitalpost"), ClientID: "samhub", ClientSecret: "post-secret", Exempt: exempt}); err != nil {
			w.t.Fatal(err)
		}
		if w.postURL, err = w.post.Start("127.0.0.1:0"); err != nil {
			w.t.Fatal(err)
		}
		w.t.Cleanup(func() { _ = w.post.Close() })
	}
}

// newWorld starts the case system, the EPJ gateway, the coordinator's
// mail server, the MedCom peer and the hub (with what opts add), and stops
// them when the test ends; the last check of every scenario runs then too.
func newWorld(t *testing.T, opts ...worldOption) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), epjPatients: map[string]string{}, expected: map[string][]string{}}
	for _, o := range opts {
		o(w)
	}
	w.mbox = filepath.Join(w.dir, "medcom")
	var err error
	if w.cases, err = casesyssim.New(casesyssim.Config{DataDir: filepath.Join(w.dir, "casesys"), ClientID: "samhub", ClientSecret: "case-secret"}); err != nil {
		t.Fatal(err)
	}
	if w.caseURL, err = w.cases.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.cases.Close() })
	if w.epj, err = epjsim.New(epjsim.Config{DataDir: filepath.Join(w.dir, "epj"), ClientID: "samhub", ClientSecret: "epj-secret"}); err != nil {
		t.Fatal(err)
	}
	if w.epjURL, err = w.epj.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.epj.Close() })
	ca := mailtest.NewCA(t)
	w.mail = mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit})
	w.peer, err = medcompeer.New(medcompeer.Config{Dir: w.mbox, Council: theCouncil, XSDDir: "../testdata/medcom/oioxml/xsd-2006-07-01",
		Parties: []medcompeer.Party{gpAero.Party, gpOster.Party, gpSonder.Party, childPsychiatry.Party}})
	if err != nil {
		t.Fatal(err)
	}
	w.peer.Start()
	t.Cleanup(w.lastCheck) // runs after the hub has stopped (cleanups run last-in first-out)
	w.hub = startHub(t, w.writeConfig(ca.PEMFile, w.extra...))
	return w
}

// expectLetters says that MedCom letters about c may go to the party to
// (and to the others said for c), and to no one else.
func (w *world) expectLetters(c child, to gp) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.expected[c.ID()], to.GLN) {
		w.expected[c.ID()] = append(w.expected[c.ID()], to.GLN)
	}
}

// mayReach reports whether letters about c may go to the party with GLN gln.
func (w *world) mayReach(c child, gln string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.expected[c.ID()], gln)
}

// lastCheck is the rule every scenario ends with: every letter the GPs and
// the region received passes MedCom's standard and is addressed to the
// party its route resolved, never to anyone else, and the peer itself
// worked.
func (w *world) lastCheck() {
	t := w.t
	if err := w.peer.Close(); err != nil {
		t.Errorf("the MedCom peer failed: %v", err)
	}
	for _, l := range w.peer.Letters() {
		what := fmt.Sprintf("%s letter %s (%s) to %s (GLN %s, SOR %s)", l.Format, l.ID, l.Kind, l.To.Name, l.To.GLN, l.To.SOR)
		if !l.Valid() {
			t.Errorf("%s fails MedCom's standard: %q", what, l.Problems)
		}
		if l.Party == "" {
			t.Errorf("%s is addressed to no GP or region endpoint (the council's own address is %s)", what, theCouncil.GLN)
			continue
		}
		w.mu.Lock()
		want, ok := w.expected[l.Patient.Identifier()]
		w.mu.Unlock()
		switch {
		case !ok:
			t.Errorf("%s: no route in this scenario sends this child's letters to any GP or the region", what)
		case !slices.Contains(want, l.Party):
			t.Errorf("%s reached %s; this child's letters go to GLN %s only", what, l.Party, strings.Join(want, " and "))
		}
	}
}

// writeConfig writes the hub's configuration: MedCom, the case system, the
// EPJ gateway and the coordinator's notices, with the council's routes and
// receiver directory.
func (w *world) writeConfig(caFile string, extra ...string) string {
	w.t.Helper()
	var dir strings.Builder
	for _, p := range []gp{gpAero, gpOster, childPsychiatry} {
		fmt.Fprintf(&dir, "  - {name: %q, role: %s, gln: %q, sor: %q, formats: [%s]}\n", p.Name, p.Role, p.GLN, p.SOR, strings.Join(p.Formats, ", "))
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
log: {level: info, format: json}
http: {listen: "127.0.0.1:0"}
nats: {embedded: {max_store: 2GB}}
streams: {letters_max_bytes: 256MB, parked_max_bytes: 128MB, journey_max_bytes: 64MB, audit_max_bytes: 64MB, blobs_max_bytes: 128MB}
pipeline: {max_attempts: 3, backoff_initial: 50ms, backoff_max: 300ms, shutdown_grace: 5s, ack_wait: 5s, sink_timeout: 10s}
adapters:
  medcom:
    type: medcom
    dir: %[2]s
    poll_interval: 50ms
    self: {gln: %[3]q, sor: %[4]q, name: %[5]q}
  casesys:
    type: casesys
    url: %[6]s
    client_id: samhub
    client_secret: case-secret
    poll_interval: 200ms
    outbox:
      sender: {role: municipality, name: %[5]q, gln: %[3]q, sor: %[4]q}
  epj:
    type: epj
    url: %[7]s
    client_id: samhub
    client_secret: epj-secret
    poll_interval: 200ms
    self: {sor: %[4]q, gln: %[3]q, name: %[5]q}
    recipient: %[8]q
  mail:
    type: smtp
    host: %[9]s
    port: %[10]d
    tls: implicit
    ca_file: %[11]s
    from: samraad@kommune.example
    allow: ["@samraad.example"]
destinations:
  casefile: {adapter: casesys, sector: municipality}
  gp: {adapter: medcom, sector: gp}
  region: {adapter: epj, sector: region_psychiatry}
  notices: {adapter: mail, sector: internal}
routes:
  - name: letters-to-case
    match: {kind: [referral, reply, note, discharge-note]}
    to: [casefile]
  - name: recommendation-to-gp
    match: {kind: [recommendation]}
    to: [gp]
  - name: recommendation-to-region
    match: {kind: [recommendation]}
    to: [region]
  - name: discharge-to-gp
    match: {kind: [discharge-note], source: [epj]}
    to: [gp]
receivers:
%[12]snotifications:
  destination: notices
  recipients: [%[13]s]
  on: [arrived, parked, answered, unanswered]
console:
  users:
    - {name: koordinator, role: coordinator, token_hash: %[14]q}
    - {name: revisor, role: auditor, token_hash: %[15]q}
`, w.dir, w.mbox, theCouncil.GLN, theCouncil.SOR, theCouncil.Name, w.caseURL, w.epjURL, childPsychiatry.SOR,
		w.mail.Host, w.mail.Port, caFile, dir.String(), coordinatorEmail, httpapi.HashToken(coordinatorToken), httpapi.HashToken(auditorToken))
	if w.post != nil {
		// The parents are citizens: Digital Post, never email.
		cfg = strings.Replace(cfg, "destinations:\n", fmt.Sprintf(`  post:
    type: digitalpost
    url: %s
    client_id: samhub
    client_secret: post-secret
    sender: {cvr: %q, name: %q}
destinations:
  parents: {adapter: post, sector: parents}
`, w.postURL, councilCVR, theCouncil.Name), 1)
		cfg = strings.Replace(cfg, "receivers:\n", `  - name: recommendation-to-parents
    match: {kind: [recommendation]}
    to: [parents]
receivers:
`, 1)
	}
	for _, kv := range w.medcom {
		cfg = strings.Replace(cfg, "    poll_interval: 50ms\n", "    poll_interval: 50ms\n    "+kv+"\n", 1)
	}
	cfg += strings.Join(extra, "")
	path := filepath.Join(w.dir, "samhub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// hubProcess is the samhub binary running `serve`.
type hubProcess struct {
	cmd  *exec.Cmd
	url  string // the API's base, e.g. http://127.0.0.1:41234
	done chan struct{}
	log  string
}

func startHub(t *testing.T, cfgPath string) *hubProcess {
	t.Helper()
	h := &hubProcess{done: make(chan struct{}), log: filepath.Join(filepath.Dir(cfgPath), "hub.log")}
	lf, err := os.Create(h.log)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bins.samhub, "serve", "--config", cfgPath)
	h.cmd.Dir = filepath.Dir(cfgPath)
	h.cmd.Stderr = lf
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "API:" {
				urls <- strings.TrimSuffix(f[1], "/api/v1")
			}
		}
	}()
	go func() { _ = h.cmd.Wait(); lf.Close(); close(h.done) }()
	t.Cleanup(func() {
		h.stop()
		if !t.Failed() {
			return
		}
		// The hub logs no personal data, so its log can go into the test
		// output: the warnings and errors always (why an API call failed),
		// everything with SAMHUB_TEST_LOG.
		b, _ := os.ReadFile(h.log)
		if os.Getenv("SAMHUB_TEST_LOG") != "" {
			t.Logf("hub log:\n%s", b)
			return
		}
		var bad []string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
				bad = append(bad, line)
			}
		}
		t.Logf("hub log, warnings and errors (all with SAMHUB_TEST_LOG=1):\n%s", strings.Join(bad, "\n"))
	})
	select {
	case h.url = <-urls:
	case <-h.done:
		b, _ := os.ReadFile(h.log)
		t.Fatalf("the hub did not start:\n%s", b)
	case <-time.After(60 * time.Second):
		t.Fatal("the hub did not say where its API is within 60 s")
	}
	return h
}

// stop ends the hub as systemd would: SIGTERM, and SIGKILL if it hangs.
func (h *hubProcess) stop() {
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// eventually polls cond until it holds; the limit bounds a scenario's
// liveness, it measures nothing.
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// holdsFor reports whether cond holds for all of d, to see that something
// does not happen (a letter that must wait is not delivered meanwhile).
func (w *world) holdsFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}
