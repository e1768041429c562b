package reliability

// The world around a hub in the scenarios that cover every destination
// kind (issue 19): the case system (referrals become documents; the
// council's recommendations wait in its outbox), the region's EPJ, Digital
// Post for the parents, the coordinator's mail server (a notice by SMTP for
// every referral) and the MedCom peer (the GPs behind their VANS client) —
// each a real server the hub talks to, and each read back by the oracle at
// the end. The hub runs as a child process built with the
// failpoints tag, or in process through hubtest.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/hubtest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// The parties around the council, all fictitious. Ærø takes XDIS91 and
// Østergade the FHIR CareCommunication, so the MedCom sink writes both.
var (
	oCouncil = medcompeer.Org{Name: "Samrådet for Børn og Unge", GLN: "5790001382445", SOR: "1144561000016002", Municipality: "461"}
	oGPs     = []struct {
		medcompeer.Party
		Format string
	}{
		{medcompeer.Party{Name: "Lægehuset Ærø", Role: "gp", GLN: "5790000000005", SOR: "543210987654321", ProviderNumber: "123456"}, "xdis91"},
		{medcompeer.Party{Name: "Lægerne i Østergade", Role: "gp", GLN: "5790000000029", SOR: "543210987654338", ProviderNumber: "234567"}, "fhir-xml"},
	}
	oRegion = medcompeer.Party{Name: "Børne- og Ungdomspsykiatrien", Role: "region", GLN: "5790000000043", SOR: "6071000016008"}
)

const (
	// oCoordinatorEmail is where the notices go by SMTP: email carries
	// letters to the council's staff and professionals only.
	oCoordinatorEmail = "koordinator@samraad.example"
	// oParentCPR is the custody holder Digital Post reaches (MedCom's
	// fictitious test person Nancy Ann Test Berggren).
	oParentCPR  = "2512489996"
	oCouncilCVR = "29189846" // the municipality as Digital Post's sender (fictitious)
	oToken      = "reliability-coordinator-token"
)

// oWorld is one scenario's servers around the hub, and its ledger.
type oWorld struct {
	t      testing.TB
	Dir    string
	MedCom string // the hub's MedCom mailbox (in/, out/, processed/ …)
	Case   *casesyssim.Server
	EPJ    *epjsim.Server
	CA     *mailtest.CA
	Mail   *mailtest.SMTPServer
	Post   *digitalpostsim.Server
	Peer   *medcompeer.Peer
	Ledger *oLedger

	CaseURL, EPJURL, PostURL string
	cases                    []string // a case per test person, with consent for the GP, the region and the parents
	mails                    *oMails
	outbox                   string // the adapter that reads the case system's outbox (letter ids name it)
}

// oNewWorld starts the servers and seeds a case (with consent) and an EPJ
// patient for each test person; everything stops when the test ends.
func oNewWorld(t testing.TB) *oWorld {
	t.Helper()
	w := &oWorld{t: t, Dir: t.TempDir(), Ledger: oNewLedger(), outbox: "casesys"}
	w.MedCom = filepath.Join(w.Dir, "medcom")
	var err error
	if w.Case, err = casesyssim.New(casesyssim.Config{DataDir: filepath.Join(w.Dir, "casesys"), ClientID: "samhub", ClientSecret: "case-secret"}); err != nil {
		t.Fatal(err)
	}
	if w.CaseURL, err = w.Case.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Case.Close() })
	if w.EPJ, err = epjsim.New(epjsim.Config{DataDir: filepath.Join(w.Dir, "epj"), ClientID: "samhub", ClientSecret: "epj-secret"}); err != nil {
		t.Fatal(err)
	}
	if w.EPJURL, err = w.EPJ.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.EPJ.Close() })
	w.CA = mailtest.NewCA(t)
	w.Mail = mailtest.StartSMTP(t, w.CA, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit})
	w.mails = &oMails{srv: w.Mail, to: oCoordinatorEmail}
	if w.Post, err = digitalpostsim.New(digitalpostsim.Config{DataDir: filepath.Join(w.Dir, "digitalpost"), ClientID: "samhub", ClientSecret: "post-secret"}); err != nil {
		t.Fatal(err)
	}
	if w.PostURL, err = w.Post.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Post.Close() })
	parties := []medcompeer.Party{oRegion}
	for _, g := range oGPs {
		parties = append(parties, g.Party)
	}
	if w.Peer, err = medcompeer.New(medcompeer.Config{Dir: w.MedCom, Council: oCouncil, Parties: parties, PollInterval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	w.Peer.Start()
	t.Cleanup(func() { _ = w.Peer.Close() })
	given := time.Now().Add(-24 * time.Hour).UTC()
	for i, p := range r1Persons {
		c, err := w.Case.SeedCase(casesyssim.Case{Title: "Samråd", PrimaryParty: casesyssim.Person{CPR: p[0], GivenName: p[1], FamilyName: p[2]},
			Consent: &casesyssim.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: &given,
				Scopes: []string{string(letter.ScopeGP), string(letter.ScopeRegionPsychiatry), string(letter.ScopeParents)}}})
		if err != nil {
			t.Fatal(err)
		}
		w.cases = append(w.cases, c.ID)
		gp := oGPs[i%len(oGPs)]
		if _, err := w.EPJ.SeedPatient(epjsim.Patient{CPR: p[0], GivenName: p[1], FamilyName: p[2],
			GP: &epjsim.Organisation{SOR: gp.SOR, GLN: gp.GLN, Name: gp.Name}}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// Referral drops referral i of a run tagged tag into in/ as a VANS client
// does (its marker in the text) and records it for the case system and
// the coordinator's notice.
func (w *oWorld) Referral(tag string, i int) error {
	id, data := r1Letter(w.t, tag, i)
	w.Ledger.Add(id, data, destCase, destNotices)
	return r1DropErr(w.MedCom, fmt.Sprintf("%s-%07d.xml", strings.ToLower(tag), i), data)
}

// Recommend puts the council's recommendation i of a run tagged tag in
// the outbox of a test person's case, for the GP, the region and the
// parents, and records it for the three.
func (w *oWorld) Recommend(tag string, i int) error {
	k := i % len(w.cases)
	gp := oGPs[k%len(oGPs)]
	text := fmt.Sprintf("Samrådet anbefaler et forløb hos PPR (%s).\nVi mødes igen om tre måneder.", oMarker(tag, i))
	d, err := w.Case.SeedOutboxDocument(w.cases[k], casesyssim.SeedDocument{Title: "Samrådets anbefaling", Text: text,
		Recipients: casesyssim.OutboxRecipients{
			GP:      &casesyssim.Organisation{Name: gp.Name, GLN: gp.GLN, SOR: gp.SOR},
			Region:  &casesyssim.Organisation{Name: oRegion.Name, SOR: oRegion.SOR},
			Parents: []casesyssim.Parent{{Name: "Forælder Test", CPR: oParentCPR}},
		}})
	if err != nil {
		return err
	}
	w.Ledger.Add("casesys:"+w.outbox+":"+d.ID, []byte(text), destGP, destRegion, destParents)
	return nil
}

// Items is what every destination holds now.
func (w *oWorld) Items() []oItem {
	items := oCaseItems(w.Case)
	items = append(items, oEPJItems(w.EPJ)...)
	items = append(items, w.mails.Items()...)
	items = append(items, oPostItems(w.Post)...)
	return append(items, oPeerItems(w.Peer)...)
}

// Delivered counts the (letter, destination) deliveries made so far.
func (w *oWorld) Delivered() int { return oDelivered(w.Ledger, w.Items()) }

// WaitAll waits until every letter reached every destination; on giving
// up it records the failure and returns, so that the scenario's oracle
// still says which letters are missing or doubled. After kills, a
// referral's notice may be lost for good (a crash between the letter's
// store and its notice's: pipeline/notify.go): then it waits for every
// other delivery, and for the notices until they are all there or none
// arrived for 5 s; the oracle counts what is missing.
func (w *oWorld) WaitAll(t testing.TB, liveness time.Duration, noticesLossy bool) {
	t.Helper()
	if !noticesLossy {
		r1WaitSoft(t, liveness, "every letter at every destination", func() bool { return w.Delivered() >= w.Ledger.Expected() })
		return
	}
	notices := func() (got, want int) {
		v := oJoin(w.Ledger, w.Items(), nil)
		for d, tl := range v.Dests {
			if d == destNotices {
				return tl.Once + tl.Dup, tl.Once + tl.Dup + tl.Lost
			}
		}
		return 0, 0
	}
	if !r1WaitSoft(t, liveness, "every letter at every destination but the notices", func() bool {
		got, want := notices()
		return w.Delivered()-got >= w.Ledger.Expected()-want
	}) {
		return
	}
	last, since := -1, time.Now()
	r1WaitSoft(t, liveness, "the notices complete or none arriving for 5 s", func() bool {
		got, want := notices()
		if got != last {
			last, since = got, time.Now()
		}
		return got >= want || time.Since(since) >= 5*time.Second
	})
}

// Verdict joins the ledger with what the destinations hold.
func (w *oWorld) Verdict(parked []retryq.Entry) oVerdict {
	return oJoin(w.Ledger, w.Items(), oParkedSet(parked))
}

// Acks checks the hub's acknowledgements of the referrals: each letter
// acknowledged, positively, and never with two different
// acknowledgements (a repeat from the duplicate memory has the same file
// name). It returns the letters acknowledged and the acknowledgement
// files taken.
func (w *oWorld) Acks() (letters, files, differing, negative int) {
	names := map[string]map[string]bool{}
	for _, a := range w.Peer.Acks() {
		if names[a.Of] == nil {
			names[a.Of] = map[string]bool{}
		}
		names[a.Of][a.File] = true
		files++
		if !a.Positive {
			negative++
		}
	}
	for _, id := range w.Ledger.IDs() {
		if strings.HasPrefix(id, "casesys:") {
			continue
		}
		if n := len(names[id]); n > 0 {
			letters++
			if n > 1 {
				differing++
			}
		}
	}
	return letters, files, differing, negative
}

// --- the hub's configuration ---

// oHubOpts are what a scenario sets in a hub's configuration.
type oHubOpts struct {
	NATSURL       string // "" = the embedded server
	Replicas      int
	Listen        string        // default a free port
	AckWait       time.Duration // default config.DefaultAckWait (the shipped value)
	SinkTimeout   time.Duration // default 10s
	ShutdownGrace time.Duration // default 5s
	MaxAttempts   int           // default 6
	BackoffMax    time.Duration // default 500ms
	// MaxInFlight is pipeline.max_in_flight, letters handled at once per
	// destination; 0 leaves the shipped default (256).
	MaxInFlight int
	// Where the sinks reach the case system, the EPJ and the mail server
	// when not direct (through a fault proxy). With CaseSinkURL the case
	// system's outbox is read by an adapter of its own, "outbox", that goes
	// direct, so recommendations keep coming while the sink side is down.
	CaseSinkURL, EPJSinkURL string
	PostSinkURL             string // Digital Post as the hub reaches it (a fault proxy)
	SMTPSinkPort            int
	MedComMaxBytes          int64  // the drop folder's max_bytes; 0: the shipped default
	Adapters                string // more adapter blocks, YAML indented by two spaces
}

func (o *oHubOpts) defaults(t testing.TB) {
	if o.Listen == "" {
		o.Listen = fmt.Sprintf("127.0.0.1:%d", r1FreePort(t))
	}
	if o.AckWait == 0 {
		o.AckWait = config.DefaultAckWait
	}
	if o.SinkTimeout == 0 {
		o.SinkTimeout = 10 * time.Second
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = 5 * time.Second
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 6
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 500 * time.Millisecond
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
}

// Config writes a hub configuration for this world into dir: MedCom in
// and out, the case system (documents and outbox), the EPJ, Digital Post
// for the parents, the coordinator's notices by mail, the council's routes and receiver directory, a coordinator token.
func (w *oWorld) Config(dir string, o oHubOpts) (path, baseURL string) {
	w.t.Helper()
	o.defaults(w.t)
	nats := "nats: {embedded: {max_store: 4GB}}"
	if o.NATSURL != "" {
		nats = fmt.Sprintf("nats: {url: %q, replicas: %d}", o.NATSURL, o.Replicas)
	}
	var receivers strings.Builder
	for _, g := range oGPs {
		fmt.Fprintf(&receivers, "  - {name: %q, role: gp, gln: %q, sor: %q, formats: [%s]}\n", g.Name, g.GLN, g.SOR, g.Format)
	}
	fmt.Fprintf(&receivers, "  - {name: %q, role: region, gln: %q, sor: %q, formats: [fhir-xml]}\n", oRegion.Name, oRegion.GLN, oRegion.SOR)
	caseSink, epjSink, smtpSink, outbox := w.CaseURL, w.EPJURL, w.Mail.Port, ""
	if o.EPJSinkURL != "" {
		epjSink = o.EPJSinkURL
	}
	postSink := w.PostURL
	if o.PostSinkURL != "" {
		postSink = o.PostSinkURL
	}
	if o.SMTPSinkPort != 0 {
		smtpSink = o.SMTPSinkPort
	}
	casePoll := "100ms"
	inFlight := ""
	if o.MaxInFlight > 0 {
		inFlight = fmt.Sprintf(", max_in_flight: %d", o.MaxInFlight)
	}
	maxBytes := ""
	if o.MedComMaxBytes > 0 {
		maxBytes = fmt.Sprintf("    max_bytes: %d\n", o.MedComMaxBytes)
	}
	if o.CaseSinkURL != "" {
		caseSink, casePoll = o.CaseSinkURL, "0s"
		w.outbox = "outbox"
		outbox = fmt.Sprintf(`  outbox:
    type: casesys
    url: %s
    client_id: samhub
    client_secret: case-secret
    poll_interval: 100ms
    outbox:
      sender: {role: municipality, name: %q, gln: %q, sor: %q}
`, w.CaseURL, oCouncil.Name, oCouncil.GLN, oCouncil.SOR)
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
log: {level: info, format: json}
http: {listen: %[2]q}
%[3]s
streams: {letters_max_bytes: 1GB, parked_max_bytes: 512MB, journey_max_bytes: 256MB, audit_max_bytes: 256MB}
pipeline: {backoff_initial: 50ms, backoff_max: %[17]s, max_attempts: %[16]d, shutdown_grace: %[4]s, ack_wait: %[5]s, sink_timeout: %[6]s%[26]s}
adapters:
  medcom:
    type: medcom
    dir: %[7]s
    poll_interval: 20ms
    self: {gln: %[8]q, sor: %[9]q, name: %[10]q}
%[23]s
  casesys:
    type: casesys
    url: %[11]s
    client_id: samhub
    client_secret: case-secret
    poll_interval: %[21]s
    outbox:
      sender: {role: municipality, name: %[10]q, gln: %[8]q, sor: %[9]q}
%[22]s  epj:
    type: epj
    url: %[12]s
    client_id: samhub
    client_secret: epj-secret
    self: {sor: %[9]q, gln: %[8]q, name: %[10]q}
    recipient: %[13]q
  mail:
    type: smtp
    host: 127.0.0.1
    port: %[14]d
    tls: implicit
    ca_file: %[15]s
    from: samraad@kommune.example
    allow: [%[18]q]
  post:
    type: digitalpost
    url: %[24]s
    client_id: samhub
    client_secret: post-secret
    sender: {cvr: %[25]q, name: %[10]q}
destinations:
  casefile: {adapter: casesys, sector: municipality}
  gp: {adapter: medcom, sector: gp}
  region: {adapter: epj, sector: region_psychiatry}
  parents: {adapter: post, sector: parents}
  notices: {adapter: mail, sector: internal}
routes:
  - name: letters-to-case
    match: {kind: [referral, reply, note, discharge-note]}
    to: [casefile]
  - name: recommendation-out
    match: {kind: [recommendation]}
    to: [gp, region, parents]
receivers:
%[19]snotifications:
  destination: notices
  recipients: [%[18]q]
  on: [arrived]
console:
  users:
    - {name: koordinator, role: coordinator, token_hash: %[20]q}
`, dir, o.Listen, nats, o.ShutdownGrace, o.AckWait, o.SinkTimeout, w.MedCom, oCouncil.GLN, oCouncil.SOR, oCouncil.Name,
		caseSink, epjSink, oRegion.SOR, smtpSink, w.CA.PEMFile, o.MaxAttempts, o.BackoffMax, oCoordinatorEmail,
		receivers.String(), httpapi.HashToken(oToken), casePoll, outbox+o.Adapters, maxBytes, postSink, oCouncilCVR, inFlight)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	path = filepath.Join(dir, "samhub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path, "http://" + o.Listen
}

// InProcess points an in-process hub (hubtest.Start) at this world: its
// MedCom folder, simulators, mail server, destinations, routes and notices.
func (w *oWorld) InProcess() hubtest.Option {
	return hubtest.WithConfig(func(c *config.Config) {
		path, _ := w.Config(filepath.Join(w.Dir, "inprocess"), oHubOpts{Listen: "127.0.0.1:0"})
		loaded, err := config.Load(path)
		if err != nil {
			w.t.Fatal(err)
		}
		c.Adapters, c.Destinations, c.Routes, c.Receivers = loaded.Adapters, loaded.Destinations, loaded.Routes, loaded.Receivers
		c.Notify = loaded.Notify
		c.Pipeline.MaxAttempts = loaded.Pipeline.MaxAttempts
	})
}

// --- the hub as a child process ---

var oBin struct {
	once sync.Once
	path string
	err  error
}

// oSamhub is the samhub binary built once for the package with the
// failpoints tag (the release build has none; see internal/failpoint).
func oSamhub(t testing.TB) string {
	t.Helper()
	oBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "samhub-reliability-")
		if err != nil {
			oBin.err = err
			return
		}
		oBin.path = filepath.Join(dir, "samhub")
		out, err := exec.Command("go", "build", "-tags", "failpoints", "-o", oBin.path, "github.com/samhub/samhub/cmd/samhub").CombinedOutput()
		if err != nil {
			oBin.err = fmt.Errorf("build samhub -tags failpoints: %v\n%s", err, out)
		}
	})
	if oBin.err != nil {
		t.Fatal(oBin.err)
	}
	return oBin.path
}

// oHub is one life of a hub process: started, then ended by itself, a
// signal or a failpoint. Its stdout and stderr go to a log file.
type oHub struct {
	cmd     *exec.Cmd
	Log     string
	URL     string
	done    chan struct{}
	signal  syscall.Signal // the signal the test sent, 0 if none
	started time.Time
	ended   time.Time
}

// oLogOnFailure logs, when the test failed, the distinct warnings and
// errors of every hub log in dir (for finding out why).
func oLogOnFailure(t *testing.T, dirs ...string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, dir := range dirs {
			files, _ := filepath.Glob(filepath.Join(dir, "hub-*.log"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				t.Logf("--- %s", f)
				r2LogMessages(t, b)
			}
		}
	})
}

// oStartHub starts life n of a hub with cfgPath; armed (a SAMHUB_FAILPOINT
// value) is added to what the test process itself runs with, so the
// deliver-twice switch reaches every child; env are more variables.
func oStartHub(t testing.TB, cfgPath, baseURL string, n int, armed string, env ...string) *oHub {
	t.Helper()
	h := &oHub{Log: filepath.Join(filepath.Dir(cfgPath), fmt.Sprintf("hub-%02d.log", n)), URL: baseURL, done: make(chan struct{})}
	lf, err := os.Create(h.Log)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(oSamhub(t), "serve", "--config", cfgPath)
	h.cmd.Stdout, h.cmd.Stderr = lf, lf
	spec := strings.Trim(os.Getenv(failpoint.EnvVar)+","+armed, ",")
	h.cmd.Env = append(append(os.Environ(), failpoint.EnvVar+"="+spec), env...)
	h.started = time.Now()
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.cmd.Wait(); h.ended = time.Now(); lf.Close(); close(h.done) }()
	t.Cleanup(func() { h.Stop(syscall.SIGKILL) })
	return h
}

// Stop sends sig unless the process has ended, and waits for it to end.
func (h *oHub) Stop(sig syscall.Signal) {
	select {
	case <-h.done:
		return
	default:
	}
	h.signal = sig
	_ = h.cmd.Process.Signal(sig)
	<-h.done
}

// Signal sends sig without waiting.
func (h *oHub) Signal(sig syscall.Signal) {
	h.signal = sig
	_ = h.cmd.Process.Signal(sig)
}

// Wait waits up to d for the process to end by itself.
func (h *oHub) Wait(d time.Duration) bool {
	select {
	case <-h.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Running reports whether the process has not ended.
func (h *oHub) Running() bool {
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// Pid is the process id.
func (h *oHub) Pid() int { return h.cmd.Process.Pid }

// oLife is how one life of a hub ended, measured from the process: a
// crash is an end the test did not cause (no signal sent, no failpoint
// reached); panics are the runtime's "panic:" and "fatal error:" lines in
// its output.
type oLife struct {
	KilledAt string // the failpoint that killed it, "" if none
	Signal   syscall.Signal
	Exit     string // the process state, e.g. "exit status 0", "signal: killed"
	Crash    bool
	Panics   int
}

// Life reads how the ended process ended.
func (h *oHub) Life() oLife {
	<-h.done
	l := oLife{Signal: h.signal, Exit: h.cmd.ProcessState.String()}
	b, _ := os.ReadFile(h.Log)
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "failpoint: killed at "); ok {
			l.KilledAt, _, _ = strings.Cut(p, " ")
		}
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
			l.Panics++
		}
	}
	ws, _ := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case l.KilledAt != "":
	case h.signal == syscall.SIGKILL && ws.Signaled():
	case h.signal != 0 && ws.Exited() && ws.ExitStatus() == 0:
	default:
		l.Crash = true
	}
	return l
}

// oLives sums lives for the scenario line.
type oLives struct {
	Lives, Crashes, Panics int
}

func (s *oLives) Add(l oLife) {
	s.Lives++
	if l.Crash {
		s.Crashes++
	}
	s.Panics += l.Panics
}

// oWaitReady polls the hub's /readyz until it answers 200.
func oWaitReady(t testing.TB, h *oHub, limit time.Duration) {
	t.Helper()
	r1Wait(t, limit, "the hub to be ready", func() bool {
		if !h.Running() {
			b, _ := os.ReadFile(h.Log)
			t.Fatalf("the hub ended while starting (%s):\n%s", h.cmd.ProcessState, r1Tail(b, 3000))
		}
		resp, err := http.Get(h.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// r1Tail is the end of a log, for messages.
func r1Tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// oAPI calls the hub's API as the coordinator.
func oAPI(baseURL, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, baseURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+oToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// oParked lists what a running hub has parked, through its API.
func oParked(t testing.TB, baseURL string) []retryq.Entry {
	t.Helper()
	code, b, err := oAPI(baseURL, http.MethodGet, "/api/v1/queue?pageSize=5000", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/queue: %d %v %s", code, err, b)
	}
	var page struct {
		Entries []retryq.Entry `json:"entries"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	return page.Entries
}

// oFeeder sends referrals and recommendations at a steady pace until
// stopped, so that every destination has letters in flight whenever a
// fault comes.
type oFeeder struct {
	w        *oWorld
	tag      string
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	sent     int
	err      error
	interval time.Duration
}

// Feed starts a feeder: letters from..to-1 (to 0: until Stop), one every
// interval, every third a recommendation (three deliveries), the others
// referrals.
func (w *oWorld) Feed(tag string, interval time.Duration, from, to int) *oFeeder {
	f := &oFeeder{w: w, tag: tag, stop: make(chan struct{}), done: make(chan struct{}), interval: interval}
	r1Letter(w.t, tag, 0) // loads the template on the test goroutine
	go func() {
		defer close(f.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := from; to == 0 || i < to; i++ {
			var err error
			if i%3 == 2 {
				err = w.Recommend(tag, i)
			} else {
				err = w.Referral(tag, i)
			}
			f.mu.Lock()
			f.sent++
			if err != nil && f.err == nil {
				f.err = err
			}
			f.mu.Unlock()
			select {
			case <-f.stop:
				return
			case <-t.C:
			}
		}
	}()
	return f
}

// oDeliveries is how many deliveries letters from..to-1 of a feed make.
func oDeliveries(from, to int) int {
	n := 0
	for i := from; i < to; i++ {
		if i%3 == 2 {
			n += 3
		} else {
			n++
		}
	}
	return n
}

// Stop stops the feeder and returns how many letters it sent.
func (f *oFeeder) Stop() int {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		f.w.t.Errorf("feeder: %v", f.err)
	}
	return f.sent
}

// Sent is how many letters the feeder sent so far.
func (f *oFeeder) Sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

// Done is closed when the feeder stopped.
func (f *oFeeder) Done() <-chan struct{} { return f.done }
