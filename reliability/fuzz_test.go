package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/email"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/internal/logging"
)

// r2FuzzLimits match the limits the adapters' own fuzz targets use.
var r2FuzzLimits = xmlsafe.Limits{MaxBytes: 1 << 20, MaxDepth: 64, MaxTokens: 100_000, MaxAttrLen: 1 << 20}

// r2Parser is one parser of untrusted input, as a receiver runs it. It
// returns the ids of the letters it accepted, or the refusal.
type r2Parser struct {
	name  string
	globs []string // seed files, relative to the repository root
	run   func(data []byte) ([]string, error)
}

var r2Parsers = []r2Parser{
	{"medcom-oioxml", []string{"testdata/medcom/oioxml/*.xml", "testdata/medcom/samhub/*.xml", "testdata/medcom/hostile/*", "testdata/medcom/golden/*.xml"},
		func(data []byte) ([]string, error) {
			m, err := oioxml.Parse(data, r2FuzzLimits)
			if m == nil {
				return nil, err
			}
			var ids []string
			for _, l := range m.ToLetters(oioxml.Input{Source: "fuzz", Data: data, Received: time.Now()}) {
				ids = append(ids, l.ID)
			}
			if err != nil {
				return nil, err
			}
			return ids, nil
		}},
	{"fhir-json", []string{"testdata/medcom/fhir/*.json", "testdata/medcom/fhir/golden/*.json"}, r2FHIR},
	{"fhir-xml", []string{"testdata/medcom/fhir/*.xml", "testdata/medcom/fhir/golden/*.xml"}, r2FHIR},
	{"vans-envelope", []string{"testdata/medcom/fhir/golden/vans-*.xml"}, r2FHIR},
	{"xmlsafe", []string{"testdata/medcom/hostile/*", "testdata/medcom/samhub/*.xml"},
		func(data []byte) ([]string, error) {
			_, err := xmlsafe.Parse(data, r2FuzzLimits)
			return nil, err
		}},
	{"mime", []string{"testdata/email/*.eml", "adapters/email/testdata/*.eml", "adapters/email/testdata/fuzz/FuzzMIME/*"},
		func(data []byte) ([]string, error) {
			l, err := email.ParseMessage("fuzz", data, time.Now(), nil)
			if err != nil {
				return nil, err
			}
			return []string{l.ID}, nil
		}},
}

func r2FHIR(data []byte) ([]string, error) {
	m, err := fhirmsg.Parse(data, r2FuzzLimits)
	if err != nil {
		return nil, err
	}
	if err := fhirmsg.Validate(m); err != nil {
		return nil, err
	}
	l := m.Letter("fuzz", data, fhirmsg.MIMEJSON)
	return []string{l.ID}, nil
}

// r2CorpusFile reads a file of Go's fuzz corpus format ("go test fuzz v1"
// then one []byte("…") or string("…") line); other files are raw seeds.
// Hand-written: the format is internal to cmd/go and has no library.
func r2CorpusFile(b []byte) []byte {
	s := string(b)
	if !strings.HasPrefix(s, "go test fuzz v1\n") {
		return b
	}
	line := strings.TrimSpace(strings.TrimPrefix(s, "go test fuzz v1\n"))
	for _, p := range []string{"[]byte(", "string("} {
		if v, ok := strings.CutPrefix(line, p); ok {
			if u, err := strconv.Unquote(strings.TrimSuffix(v, ")")); err == nil {
				return []byte(u)
			}
		}
	}
	return b
}

// r2Mutate derives n inputs from seed: truncations, byte flips, spliced
// duplicates and deleted runs, from a fixed random source so a failure
// can be replayed.
func r2Mutate(seed []byte, n int, rng *rand.Rand) [][]byte {
	out := make([][]byte, 0, n)
	if len(seed) == 0 {
		return out
	}
	for range n {
		b := append([]byte(nil), seed...)
		switch rng.IntN(4) {
		case 0:
			b = b[:rng.IntN(len(b))]
		case 1:
			for range 1 + rng.IntN(8) {
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			}
		case 2:
			i, j := rng.IntN(len(b)), rng.IntN(len(b))
			if i > j {
				i, j = j, i
			}
			b = append(b[:j:j], append(append([]byte(nil), seed[i:j]...), seed[j:]...)...)
		default:
			i := rng.IntN(len(b))
			b = append(b[:i:i], b[min(len(b), i+1+rng.IntN(64)):]...)
		}
		out = append(out, b)
	}
	return out
}

// TestScenarioFuzz is issue 11 scenario 8 in its CI form: every parser of
// untrusted input runs its seed corpus (the MedCom examples, the hostile
// corpora, Go's saved fuzz inputs) and deterministic mutations of it.
// Properties: no panic, no refusal quoting a CPR number, every accepted
// letter has an id. Inputs slower than 1 s are counted, not asserted. The
// 10-minute coverage-guided run per target is `make fuzz` (scripts/fuzz.sh).
func TestScenarioFuzz(t *testing.T) {
	t.Parallel()
	mutations := size("FUZZ_MUTATIONS", 30, 2000)
	hostile := r2HostileInputs(t, nil)
	var inputs, panics, accepted, slow, cprLeaks int
	var perParser []string
	for _, p := range r2Parsers {
		t.Run(p.name, func(t *testing.T) {
			var seeds [][]byte
			for _, g := range p.globs {
				files, _ := filepath.Glob(filepath.Join("..", g))
				for _, f := range files {
					if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Size() <= 1<<20 {
						b, _ := os.ReadFile(f)
						seeds = append(seeds, r2CorpusFile(b))
					}
				}
			}
			if len(seeds) == 0 {
				t.Fatalf("no seed files for %s (globs %v)", p.name, p.globs)
			}
			for _, h := range hostile {
				if len(h.data) <= 1<<20 {
					seeds = append(seeds, h.data)
				}
			}
			rng := rand.New(rand.NewPCG(11, uint64(len(p.name))))
			all := append([][]byte(nil), seeds...)
			for _, s := range seeds {
				all = append(all, r2Mutate(s, mutations, rng)...)
			}
			n0 := inputs
			for i, data := range all {
				inputs++
				start := time.Now()
				ids, err, perr := r2Guard(p.run, data)
				if time.Since(start) > time.Second {
					slow++
				}
				if perr != nil {
					panics++
					t.Errorf("input %d (%d bytes) panicked: %v", i, len(data), perr)
					continue
				}
				if err != nil {
					if logging.ContainsCPR(err.Error()) {
						cprLeaks++
						t.Errorf("input %d: the refusal quotes a CPR-shaped number", i)
					}
					continue
				}
				accepted++
				for _, id := range ids {
					if id == "" {
						t.Errorf("input %d: accepted a letter without an id", i)
					}
				}
			}
			perParser = append(perParser, fmt.Sprintf("%s:%d", p.name, inputs-n0))
		})
	}
	report(t, "fuzz", "parsers", len(r2Parsers), "inputs", inputs, "accepted", accepted, "panics", panics,
		"slow_over_1s", slow, "cpr_in_errors", cprLeaks, "per_parser", strings.Join(perParser, ","))
}

func r2Guard(f func([]byte) ([]string, error), data []byte) (ids []string, err error, perr any) {
	defer func() { perr = recover() }()
	ids, err = f(data)
	return ids, err, nil
}
