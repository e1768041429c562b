package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// letterTemplate is testdata/medcom/samhub/letter-10k.xml: a ~10 KB XDIS91
// referral from a GP about MedCom's test person Bruno Test Elmer.
const letterTemplate = "testdata/medcom/samhub/letter-10k.xml"

// Identifiers inside the template that each generated letter replaces.
const (
	tmplEnvelope = "ENV00000000010"
	tmplLetter   = "LTR00000000010"
	tmplEpisode  = "0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5"
	senderEAN    = "5790000000005"
	testCPR      = "2509479989" // Bruno Test Elmer, MedCom's fictitious test person

	tmplReceiver  = "<Identifier>461</Identifier>\n      <IdentifierCode>kommunenummer</IdentifierCode>"
	benchReceiver = "<Identifier>5790000000012</Identifier>\n      <IdentifierCode>lokationsnummer</IdentifierCode>"
)

// letters makes the run's letters from the template: the receiver is
// replaced once, and each letter is a copy with its identifiers written
// over the template's at fixed offsets (they have the same lengths), one
// allocation per letter. The harness's own cost is counted in the hub's
// CPU and allocation figures, so it is kept small.
type letters struct {
	tmpl                    []byte
	envAt, ltrAt, episodeAt int
}

func loadLetters(repo string) (*letters, error) {
	b, err := os.ReadFile(filepath.Join(repo, letterTemplate))
	if err != nil {
		return nil, err
	}
	for _, s := range []string{tmplEnvelope, tmplLetter, tmplEpisode, tmplReceiver} {
		if bytes.Count(b, []byte(s)) != 1 {
			return nil, fmt.Errorf("%s: expected %s exactly once", letterTemplate, s)
		}
	}
	// Addressed by location number rather than as the municipality: a
	// letter naming only the municipality goes to the municipality's
	// sectors only (routes narrow, never widen), and the bench's flow
	// sends each letter to the region as well.
	b = bytes.Replace(b, []byte(tmplReceiver), []byte(benchReceiver), 1)
	return &letters{
		tmpl:      b,
		envAt:     bytes.Index(b, []byte(tmplEnvelope)),
		ltrAt:     bytes.Index(b, []byte(tmplLetter)),
		episodeAt: bytes.Index(b, []byte(tmplEpisode)),
	}, nil
}

// letter returns letter number i of a run: its own envelope and letter
// identifiers and its own episode (thread), so letters are independent and
// the per-thread ordering of the hub does not serialise them.
func (g *letters) letter(run, i int) (name string, data []byte, hubID string) {
	n := run*10_000_000 + i
	data = bytes.Clone(g.tmpl)
	// Each is as long as the identifier it replaces (checked in the test).
	copy(data[g.envAt:g.envAt+len(tmplEnvelope)], fmt.Sprintf("ENV%011d", n))
	copy(data[g.ltrAt:g.ltrAt+len(tmplLetter)], fmt.Sprintf("LTR%011d", n))
	copy(data[g.episodeAt:g.episodeAt+len(tmplEpisode)], fmt.Sprintf("%032x", n))
	name, hubID = g.names(run, i)
	return name, data, hubID
}

// names is letter's file name and hub id without its bytes.
func (g *letters) names(run, i int) (name, hubID string) {
	n := run*10_000_000 + i
	return fmt.Sprintf("bench-%011d.xml", n), senderEAN + "#" + fmt.Sprintf("LTR%011d", n)
}

// peerID is the id the peer reports for letter i (its letter identifier).
func peerID(run, i int) string { return fmt.Sprintf("LTR%011d", run*10_000_000+i) }

// drop writes a letter the way a VANS client does: a dotfile, then an
// atomic rename into in/.
func drop(in, name string, data []byte) error {
	tmp := filepath.Join(in, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(in, name))
}
