package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

type letters struct{ tmpl []byte }

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
	return &letters{tmpl: b}, nil
}

// letter returns letter number i of a run: its own envelope and letter
// identifiers and its own episode (thread), so letters are independent and
// the per-thread ordering of the hub does not serialise them.
func (g *letters) letter(run, i int) (name string, data []byte, hubID string) {
	n := run*10_000_000 + i
	s := strings.Replace(string(g.tmpl), tmplEnvelope, fmt.Sprintf("ENV%011d", n), 1)
	s = strings.Replace(s, tmplLetter, fmt.Sprintf("LTR%011d", n), 1)
	s = strings.Replace(s, tmplEpisode, fmt.Sprintf("%032x", n), 1)
	// Addressed by location number rather than as the municipality: a
	// letter naming only the municipality goes to the municipality's
	// sectors only (routes narrow, never widen), and the bench's flow
	// sends each letter to the region as well.
	s = strings.Replace(s, tmplReceiver, benchReceiver, 1)
	name, hubID = g.names(run, i)
	return name, []byte(s), hubID
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
