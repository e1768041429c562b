// Package reliability is Samhub's reliability suite (issue 11): each
// TestScenario<Name> runs a whole hub against real servers, small by default
// (make test) and large with SAMHUB_SOAK=1 (make soak), and prints its
// figures in one line.
package reliability

// Helpers for part 1 of the suite (kill9, cluster, outage, lostreply,
// duplicate, shutdown, soak). Every package-level name here starts with r1
// so it cannot collide with the helpers of part 2 in the same package.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/retryq"
)

// soakSize reports whether the suite runs at soak size (make soak).
func soakSize() bool { return os.Getenv("SAMHUB_SOAK") == "1" }

// size is SAMHUB_<name> when set, else the CI or the soak default.
func size(name string, ci, soak int) int {
	if v, err := strconv.Atoi(os.Getenv("SAMHUB_" + name)); err == nil && v > 0 {
		return v
	}
	if soakSize() {
		return soak
	}
	return ci
}

// r1Dur is SAMHUB_<name> (a Go duration) when set, else the CI or soak default.
func r1Dur(name string, ci, soak time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv("SAMHUB_" + name)); err == nil && v > 0 {
		return v
	}
	if soakSize() {
		return soak
	}
	return ci
}

// r1Seed is SAMHUB_SEED or a fresh seed; scenarios print it so a run can be
// repeated.
func r1Seed() uint64 {
	if v, err := strconv.ParseUint(os.Getenv("SAMHUB_SEED"), 10, 64); err == nil {
		return v
	}
	return uint64(time.Now().UnixNano())
}

// report prints the scenario's one line of figures, in the log and on stdout.
func report(t testing.TB, scenario string, kv ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("scenario=" + scenario)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Log(b.String())
	fmt.Println(b.String())
}

var (
	r1TemplateOnce sync.Once
	r1Template     string
	r1TemplateErr  error
)

// r1Persons are MedCom's fictitious test persons (CPR, given name, surname);
// letters rotate over them so the case system holds several children.
var r1Persons = [][3]string{
	{"2509479989", "Bruno Test", "Elmer"},
	{"1509819996", "Brita Test", "Berggren"},
	{"2512489996", "Nancy Ann Test", "Berggren"},
}

// r1Letter is good XDIS91 letter number i of a run tagged tag (three
// capital letters): unique letter and envelope identifiers, its own
// episode of care, so letters do not queue behind each other in one
// thread, and its oracle marker in the text. It returns the hub's letter
// id (sender EAN#identifier) and the bytes.
func r1Letter(t testing.TB, tag string, i int) (string, []byte) {
	t.Helper()
	r1TemplateOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "medcom", "samhub", "letter-utf8.xml"))
		r1Template, r1TemplateErr = string(b), err
	})
	if r1TemplateErr != nil {
		t.Fatal(r1TemplateErr)
	}
	if len(tag) != 3 {
		t.Fatalf("tag %q: want three characters", tag)
	}
	ident := fmt.Sprintf("%s%011d", tag, i)
	s := strings.Replace(r1Template, "<Identifier>LTR00000000001</Identifier>", "<Identifier>"+ident+"</Identifier>", 1)
	s = strings.Replace(s, "<Identifier>ENV00000000001</Identifier>", fmt.Sprintf("<Identifier>%sE%010d</Identifier>", tag, i), 1)
	s = strings.Replace(s, "0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5", fmt.Sprintf("%s%029x", strings.ToLower(tag), i), 1)
	s = strings.Replace(s, "Kære samråd<Break/>", "Kære samråd ("+oMarker(tag, i)+")<Break/>", 1)
	return "5790000000005#" + ident, []byte(r1Person(s, i))
}

// r1Person puts test person i (of r1Persons, in turn) in place of the
// fixtures' Bruno Test Elmer.
func r1Person(s string, i int) string {
	if p := r1Persons[i%len(r1Persons)]; p[0] != r1Persons[0][0] {
		s = strings.Replace(s, "2509479989", p[0], 1)
		s = strings.Replace(s, "<PersonGivenName>Bruno Test</PersonGivenName>", "<PersonGivenName>"+p[1]+"</PersonGivenName>", 1)
		s = strings.Replace(s, "<PersonSurnameName>Elmer</PersonSurnameName>", "<PersonSurnameName>"+p[2]+"</PersonSurnameName>", 1)
	}
	return s
}

var (
	r1XBINOnce     sync.Once
	r1XBINTemplate string
	r1XBINErr      error
)

// r1XBIN01 is the XBIN01 letter carrying the file that letter i of tag
// names (r1WithBIN), about the same child; file is its bytes, its own per
// letter.
func r1XBIN01(t testing.TB, tag string, i int) (data, file []byte) {
	t.Helper()
	r1XBINOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "medcom", "samhub", "xbin01.xml"))
		r1XBINTemplate, r1XBINErr = string(b), err
	})
	if r1XBINErr != nil {
		t.Fatal(r1XBINErr)
	}
	file = []byte(fmt.Sprintf("%%PDF-1.4\n%% Samhub reliability file %s %d (fictitious)\n", tag, i))
	s := strings.Replace(r1XBINTemplate, "<Identifier>BIN00000000102</Identifier>", fmt.Sprintf("<Identifier>%sB%010d</Identifier>", tag, i), 1)
	s = strings.Replace(s, "<Identifier>ENV00000000102</Identifier>", fmt.Sprintf("<Identifier>%sF%010d</Identifier>", tag, i), 1)
	s = strings.Replace(s, "<ObjectIdentifier>BIN00000000101</ObjectIdentifier>", fmt.Sprintf("<ObjectIdentifier>%sO%010d</ObjectIdentifier>", tag, i), 1)
	s = regexp.MustCompile(`(?s)<OriginalObjectSize>.*?</Object_Base64Encoded>`).ReplaceAllLiteralString(s,
		fmt.Sprintf("<OriginalObjectSize>%d</OriginalObjectSize>\n      <Object_Base64Encoded>%s</Object_Base64Encoded>", len(file), base64.StdEncoding.EncodeToString(file)))
	return []byte(r1Person(s, i)), file
}

// r1WithBIN makes letter i of tag name the file r1XBIN01 carries.
func r1WithBIN(data []byte, tag string, i, size int) []byte {
	ref := fmt.Sprintf("<Reference><RefDescription>Bilag</RefDescription><BIN><ObjectIdentifier>%sO%010d</ObjectIdentifier>"+
		"<ObjectCode>tekstfil</ObjectCode><ObjectExtensionCode>pdf</ObjectExtensionCode><OriginalObjectSize>%d</OriginalObjectSize></BIN></Reference></ClinicalEmail>", tag, i, size)
	return bytes.Replace(data, []byte("</ClinicalEmail>"), []byte(ref), 1)
}

// r1WithEnvelope gives a letter a new envelope identifier, as a MedCom
// resend does.
func r1WithEnvelope(data []byte, env string) []byte {
	re := regexp.MustCompile(`(<Envelope>[\s\S]*?<Identifier>)[^<]*(</Identifier>)`)
	return re.ReplaceAll(data, []byte("${1}"+env+"${2}"))
}

// r1Delivered counts the ledger's letters that have at least one case
// document.
func r1Delivered(l *oLedger, sim *casesyssim.Server) int {
	return oDelivered(l, oCaseItems(sim))
}

// r1CaseVerdict is the oracle's verdict for a hub whose letters go to the
// case system only.
func r1CaseVerdict(l *oLedger, sim *casesyssim.Server, parked []retryq.Entry) oVerdict {
	return oJoin(l, oCaseItems(sim), oParkedSet(parked))
}

// r1Wait polls cond every 25 ms until it holds or limit passes. It is a
// liveness bound for the scenario, not a speed assertion.
func r1Wait(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// r1WaitSoft is r1Wait for a scenario's last wait before its oracle: on
// giving up it records the failure and returns false, so the oracle still
// says what is missing or doubled, letter by letter.
func r1WaitSoft(t testing.TB, limit time.Duration, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("gave up after %s waiting for %s", limit, what)
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}

// r1Drop writes a letter into a MedCom inbox as a VANS client does: a
// dotfile, then an atomic rename.
func r1Drop(t testing.TB, medcomDir, name string, data []byte) {
	t.Helper()
	if err := r1DropErr(medcomDir, name, data); err != nil {
		t.Fatal(err)
	}
}

func r1DropErr(medcomDir, name string, data []byte) error {
	in := filepath.Join(medcomDir, "in")
	if err := os.MkdirAll(in, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(in, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(in, name))
}

// r1Files counts the visible regular files in dir.
func r1Files(dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range es {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// r1Parked lists the parked entries of an in-process hub.
func r1Parked(t testing.TB, h *hubtest.Hub) []retryq.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	es, err := h.App.Hub.Queue().List(ctx, retryq.Filter{Limit: 1 << 20})
	if err != nil {
		t.Fatalf("queue list: %v", err)
	}
	return es
}

// r1Receipts plays the VANS client on the out/ folder: it takes every file
// the hub writes there and remembers each distinct content per name, so a
// scenario can check that every copy of a letter got the same
// acknowledgement.
type r1Receipts struct {
	dir     string
	mu      sync.Mutex
	content map[string]map[string]bool // name -> content hashes
	copies  map[string]int
	stop    chan struct{}
	done    chan struct{}
}

func r1CollectReceipts(medcomDir string) *r1Receipts {
	r := &r1Receipts{dir: filepath.Join(medcomDir, "out"), content: map[string]map[string]bool{}, copies: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			r.sweep()
			select {
			case <-r.stop:
				r.sweep()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return r
}

func (r *r1Receipts) sweep() {
	es, _ := os.ReadDir(r.dir)
	for _, e := range es {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		p := filepath.Join(r.dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if os.Remove(p) != nil {
			continue
		}
		s := sha256.Sum256(b)
		r.mu.Lock()
		if r.content[e.Name()] == nil {
			r.content[e.Name()] = map[string]bool{}
		}
		r.content[e.Name()][hex.EncodeToString(s[:])] = true
		r.copies[e.Name()]++
		r.mu.Unlock()
	}
}

// Stop ends the collection and returns how many names were seen, how many
// files in all, and how many names got more than one distinct content.
func (r *r1Receipts) Stop() (names, files, mismatched int) {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, c := range r.content {
		files += r.copies[n]
		if len(c) > 1 {
			mismatched++
		}
	}
	return len(r.content), files, mismatched
}

// r1PII finds the personal data the scenarios' letters carry: the
// fictitious persons' CPR numbers (with or without the dash) and names.
var r1PII = regexp.MustCompile(`250947-?9989|150981-?9996|251248-?9996|070392-?1VJ4|Bruno|Elmer|Brita|Nancy|Berggren`)

// r1LogLines counts the lines of the child logs in dir containing s.
func r1LogLines(dir, s string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "hub-*.log"))
	n := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), s) {
				n++
			}
		}
		fh.Close()
	}
	return n
}

// r1FreePort reserves a loopback port for a server that must come back on
// the same address after a restart. It is picked below Linux's ephemeral
// range (32768-60999), where no client connection's own port can land: a
// port from that range, free while its server was down or not yet
// started, could be taken by a connection for the connection's whole life
// (CI run 79, likely: a cluster node not ready after three tries). Each
// port is handed out once per process.
func r1FreePort(t testing.TB) int {
	t.Helper()
	r1PortsMu.Lock()
	defer r1PortsMu.Unlock()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if r1Ports[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		r1Ports[p] = true
		return p
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return 0
}

var (
	r1PortsMu sync.Mutex
	r1Ports   = map[int]bool{}
)

// r1Proxy forwards TCP connections to a target and can cut them all and
// refuse new ones: a network partition between two NATS nodes, in process.
// Hand-written because it is twenty lines and a test-only tool (a toxiproxy
// server would be another process to run).
type r1Proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]bool
}

func r1NewProxy(t testing.TB, target string) *r1Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &r1Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Block(true) })
	return p
}

func (p *r1Proxy) Addr() string { return p.ln.Addr().String() }

func (p *r1Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		blocked := p.blocked
		p.mu.Unlock()
		if blocked {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(c, up)
		go pipe(up, c)
	}
}

// Block cuts every connection and refuses new ones (on) or lets them
// through again (off).
func (p *r1Proxy) Block(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = on
	if on {
		for c := range p.conns {
			c.Close()
		}
	}
}

// r1Feeder drops letters from the ledger's generator at a steady pace in
// its own goroutine.
type r1Feeder struct {
	done chan struct{}
	sent int
	mu   sync.Mutex
}

// r1Feed drops letters from..to-1 tagged tag into medcomDir, pausing every after
// each batch of batch letters and recording each in the ledger.
func r1Feed(t testing.TB, l *oLedger, medcomDir, tag string, from, to, batch int, every time.Duration) *r1Feeder {
	f := &r1Feeder{done: make(chan struct{})}
	r1Letter(t, tag, 0) // loads the template on the test goroutine
	go func() {
		defer close(f.done)
		for i := from; i < to; i++ {
			id, data := r1Letter(t, tag, i)
			l.Add(id, data, "casefile")
			if err := r1DropErr(medcomDir, fmt.Sprintf("%s-%07d.xml", strings.ToLower(tag), i), data); err != nil {
				t.Errorf("drop letter %d: %v", i, err)
				return
			}
			f.mu.Lock()
			f.sent++
			f.mu.Unlock()
			if batch > 0 && (i+1)%batch == 0 {
				time.Sleep(every)
			}
		}
	}()
	return f
}

func (f *r1Feeder) Sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

func (f *r1Feeder) Wait() { <-f.done }

// r1Rand is a seeded source for the scenario's random choices.
func r1Rand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x5a5a)) }

// r1Get fetches url without credentials (the metrics page).
func r1Get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metricSum sums every sample of a metric family in a Prometheus text page;
// name may go on with its first label to sum only those samples.
func metricSum(page []byte, name string) float64 {
	var sum float64
	for _, line := range strings.Split(string(page), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") && !(strings.Contains(name, "{") && strings.HasPrefix(line, name)) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
