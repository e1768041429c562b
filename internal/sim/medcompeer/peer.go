package medcompeer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// Org is a MedCom address: what a letter names as its sender or receiver.
type Org struct {
	Name         string `json:"name,omitempty"`
	GLN          string `json:"gln,omitempty"`
	SOR          string `json:"sor,omitempty"`
	Municipality string `json:"municipality,omitempty"` // kommunenummer, the XDIS91 identifier of a municipality
}

// Party is one system the peer plays: a GP practice or the region's
// MedCom endpoint.
type Party struct {
	Name string
	Role string // gp, region, hospital
	GLN  string // required: letters are addressed and answered by it
	SOR  string // required for FHIR (MedCom names organisations by both)
	// ProviderNumber is a GP practice's ydernummer, its XDIS91 identifier.
	ProviderNumber string
}

func (p Party) org() Org { return Org{Name: p.Name, GLN: p.GLN, SOR: p.SOR} }

// Config configures a peer.
type Config struct {
	// Dir is the hub's MedCom mailbox: out/ is read, in/ written.
	Dir string
	// Council is the hub's MedCom address, the receiver of what the
	// parties send unless Outgoing.To says otherwise.
	Council Org
	Parties []Party
	// XSDDir holds MedCom's XDIS91 schema closure (ClinicalEmail.xsd and
	// what it includes); every XDIS91 letter is checked against it with
	// xmllint. Empty: no XSD check (Checks says so).
	XSDDir string
	// PollInterval is how often Start sweeps out/ (default 50ms).
	PollInterval time.Duration
	Now          func() time.Time
}

// Answer is how a party answers a letter.
type Answer struct {
	Refuse bool   // a negative acknowledgement (XCTL02, FHIR fatal-error)
	Reason string // why, in plain text without personal data
	Silent bool   // no acknowledgement at all, as a system that is down
}

// Letter is one letter the peer took from out/.
type Letter struct {
	File       string      `json:"file"`
	At         time.Time   `json:"at"`
	Format     string      `json:"format"`            // xdis91, fhir-xml, fhir-json, or "" when unreadable
	Charset    string      `json:"charset,omitempty"` // XDIS91: as declared
	Enveloped  bool        `json:"enveloped,omitempty"`
	Kind       letter.Kind `json:"kind,omitempty"` // the repository's reading of it
	ID         string      `json:"id,omitempty"`   // XDIS91 "senderGLN#letterid", FHIR MessageHeader.id
	EnvelopeID string      `json:"envelopeId,omitempty"`
	// Thread is the FHIR Communication.identifier or the XDIS91
	// EpisodeOfCareIdentifier; InReplyTo the MessageHeader (or
	// "GLN#letterid") a FHIR letter answers.
	Thread    string         `json:"thread,omitempty"`
	InReplyTo string         `json:"inReplyTo,omitempty"`
	Category  string         `json:"category,omitempty"`
	Subject   string         `json:"subject,omitempty"`
	Text      string         `json:"text,omitempty"`
	From      Org            `json:"from"`
	To        Org            `json:"to"`
	Party     string         `json:"party,omitempty"` // GLN of the party it reached; "" when none has its address
	Patient   letter.Patient `json:"patient"`
	Problems  []string       `json:"problems,omitempty"` // where it fails the standard; empty: valid
	Answer    string         `json:"answer,omitempty"`   // positive, negative, or "" when none was sent
	// Files names, by object id, the files an XDIS91 letter names in BIN
	// references (Peer.FilesOf gives their bytes once their XBIN01
	// letter arrived).
	Files []string `json:"files,omitempty"`
	Raw   []byte   `json:"-"`

	reply *replyData
}

// Valid reports whether the letter passed every check.
func (l Letter) Valid() bool { return len(l.Problems) == 0 }

// Ack is an acknowledgement the hub sent for a letter of the peer.
type Ack struct {
	File      string    `json:"file"`
	At        time.Time `json:"at"`
	Format    string    `json:"format"` // xctl, fhir-xml, fhir-json
	Enveloped bool      `json:"enveloped,omitempty"`
	Positive  bool      `json:"positive"`
	// Code is the receipt type (PositiveReceipt, NegativeReceipt,
	// NegativeVansReceipt) or the FHIR response code (ok, transient-error,
	// fatal-error).
	Code     string   `json:"code"`
	Of       string   `json:"of"` // the acknowledged letter: XDIS91 "senderGLN#letterid", FHIR MessageHeader.id
	From     Org      `json:"from"`
	To       Org      `json:"to"`
	Problems []string `json:"problems,omitempty"`
	// Issues are a FHIR acknowledgement's issues: its MedCom code, if
	// any, and its text, "CODE: text".
	Issues []string `json:"issues,omitempty"`
	// SHA256 is the hex digest of the file: a repeated acknowledgement
	// must be the same bytes.
	SHA256 string `json:"sha256,omitempty"`
}

// Sent is a letter the peer sent.
type Sent struct {
	ID        string    `json:"id"` // as the hub names it: XDIS91 "senderGLN#letterid", FHIR MessageHeader.id
	File      string    `json:"file"`
	At        time.Time `json:"at"`
	Format    string    `json:"format"`
	Charset   string    `json:"charset,omitempty"`
	Enveloped bool      `json:"enveloped,omitempty"`
	From      Org       `json:"from"`
	To        Org       `json:"to"`
	Thread    string    `json:"thread,omitempty"`
	Data      []byte    `json:"-"`
	// Binary is the XBIN01 letter carrying an XDIS91 letter's files.
	Binary *Sent `json:"binary,omitempty"`
}

// Peer is a running MedCom peer.
type Peer struct {
	cfg     Config
	in, out string
	xmllint string
	lim     xmlsafe.Limits
	parties map[string]Party // by GLN
	bySOR   map[string]Party

	mu       sync.Mutex
	letters  []*Letter
	acks     []Ack
	sent     []Sent
	errs     []error
	objects  map[string][]byte   // files of XBIN01 letters received, by "senderGLN#objectid"
	answers  map[string]Answer   // default per party GLN
	nexts    map[string][]Answer // one-off answers per party GLN, in order
	sweeping sync.Mutex

	stop chan struct{}
	done chan struct{}
}

// New checks cfg and prepares the mailbox directories.
func New(cfg Config) (*Peer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("medcompeer: Config.Dir must name the hub's MedCom mailbox")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Peer{cfg: cfg, in: filepath.Join(cfg.Dir, "in"), out: filepath.Join(cfg.Dir, "out"), lim: xmlsafe.DefaultLimits(),
		parties: map[string]Party{}, bySOR: map[string]Party{}, answers: map[string]Answer{}, nexts: map[string][]Answer{}}
	for i, pa := range cfg.Parties {
		if len(pa.GLN) != 13 || strings.Trim(pa.GLN, "0123456789") != "" {
			return nil, fmt.Errorf("medcompeer: Parties[%d].GLN: must be a 13-digit GLN", i)
		}
		if _, dup := p.parties[pa.GLN]; dup {
			return nil, fmt.Errorf("medcompeer: Parties[%d].GLN: listed twice", i)
		}
		p.parties[pa.GLN] = pa
		if pa.SOR != "" {
			p.bySOR[pa.SOR] = pa
		}
	}
	if cfg.XSDDir != "" {
		if _, err := os.Stat(filepath.Join(cfg.XSDDir, "ClinicalEmail.xsd")); err != nil {
			return nil, fmt.Errorf("medcompeer: Config.XSDDir: no ClinicalEmail.xsd there: %w", err)
		}
		bin, err := exec.LookPath("xmllint")
		if err != nil {
			return nil, errors.New("medcompeer: Config.XSDDir is set but xmllint is not installed (Debian: apt-get install libxml2-utils)")
		}
		p.xmllint = bin
	}
	for _, d := range []string{p.in, p.out} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("medcompeer: %w", err)
		}
	}
	return p, nil
}

// Checks says what the peer checks letters against.
func (p *Peer) Checks() []string {
	c := []string{"oioxml reader (XDIS91 rules)", "fhirmsg reader and validator (CareCommunication, Acknowledgement, VANSEnvelope)"}
	if p.xmllint != "" {
		c = append(c, "xmllint against "+filepath.Join(p.cfg.XSDDir, "ClinicalEmail.xsd"))
	}
	return c
}

// Start sweeps out/ every PollInterval until Close.
func (p *Peer) Start() {
	p.mu.Lock()
	if p.stop != nil {
		p.mu.Unlock()
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	p.stop, p.done = stop, done
	p.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(p.cfg.PollInterval)
		defer t.Stop()
		for {
			p.Sweep()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the background sweep and takes what is left in out/.
func (p *Peer) Close() error {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	p.Sweep()
	return errors.Join(p.Errors()...)
}

// Sweep takes every finished file in out/ now, in name order.
func (p *Peer) Sweep() {
	p.sweeping.Lock()
	defer p.sweeping.Unlock()
	entries, err := os.ReadDir(p.out)
	if err != nil {
		p.fail(fmt.Errorf("read out/: %w", err))
		return
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".tmp") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		path := filepath.Join(p.out, n)
		data, err := os.ReadFile(path)
		if err != nil {
			p.fail(fmt.Errorf("read out/%s: %w", n, err))
			continue
		}
		// Taken: a VANS client removes what it picked up.
		if err := os.Remove(path); err != nil {
			p.fail(fmt.Errorf("remove out/%s: %w", n, err))
			continue
		}
		p.take(n, data)
	}
}

// SetAnswer sets how the party with GLN gln answers from now on.
func (p *Peer) SetAnswer(gln string, a Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[gln] = a
}

// AnswerNext makes the party with GLN gln answer its next valid letter with
// a (then it answers as SetAnswer says again). Calls queue up.
func (p *Peer) AnswerNext(gln string, a Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nexts[gln] = append(p.nexts[gln], a)
}

func (p *Peer) answerFor(gln string) Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.nexts[gln]; len(q) > 0 {
		p.nexts[gln] = q[1:]
		return q[0]
	}
	return p.answers[gln]
}

// Letters returns every letter taken so far, in the order taken.
func (p *Peer) Letters() []Letter {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Letter, 0, len(p.letters))
	for _, l := range p.letters {
		out = append(out, *l)
	}
	return out
}

// Received returns the letters addressed to the party with GLN gln, in the
// order taken.
func (p *Peer) Received(gln string) []Letter {
	var out []Letter
	for _, l := range p.Letters() {
		if l.Party == gln {
			out = append(out, l)
		}
	}
	return out
}

// Invalid returns the letters that failed a check.
func (p *Peer) Invalid() []Letter {
	var out []Letter
	for _, l := range p.Letters() {
		if !l.Valid() {
			out = append(out, l)
		}
	}
	return out
}

// Undeliverable returns the letters addressed to no party of the peer.
func (p *Peer) Undeliverable() []Letter {
	var out []Letter
	for _, l := range p.Letters() {
		if l.Party == "" {
			out = append(out, l)
		}
	}
	return out
}

// Acks returns the hub's acknowledgements taken so far.
func (p *Peer) Acks() []Ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acks)
}

// AckFor returns the hub's acknowledgement of the letter the peer sent as
// id (Sent.ID).
func (p *Peer) AckFor(id string) (Ack, bool) {
	for _, a := range p.Acks() {
		if a.Of == id {
			return a, true
		}
	}
	return Ack{}, false
}

// SentLetters returns what the peer sent, in order.
func (p *Peer) SentLetters() []Sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// Errors returns the peer's own failures (a file it could not read or
// write), which make a test's result meaningless.
func (p *Peer) Errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

func (p *Peer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

func (p *Peer) record(l *Letter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.letters = append(p.letters, l)
}

// partyOf finds the party a letter is addressed to: by GLN, and by SOR
// when the letter names one. Both must name the same party.
func (p *Peer) partyOf(to Org) (Party, []string) {
	byGLN, okG := p.parties[to.GLN]
	bySOR, okS := p.bySOR[to.SOR]
	switch {
	case okG && to.SOR != "" && (!okS || bySOR.GLN != byGLN.GLN):
		return Party{}, []string{fmt.Sprintf("receiver: GLN %s and SOR %s do not name the same party", to.GLN, to.SOR)}
	case okG:
		return byGLN, nil
	case okS && to.GLN != "":
		return Party{}, []string{fmt.Sprintf("receiver: GLN %s and SOR %s do not name the same party", to.GLN, to.SOR)}
	}
	return Party{}, nil
}

// drop writes data into in/ as a VANS client does: a dotfile, then a rename.
func (p *Peer) drop(name string, data []byte) error {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(p.in, "."+name+"."+hex.EncodeToString(rnd[:])+".tmp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(p.in, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
