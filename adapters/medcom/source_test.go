package medcom

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

func parseOut(t *testing.T, data []byte) *oioxml.Emessage {
	t.Helper()
	m, err := oioxml.Parse(data, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	deps := adapters.Deps{Name: "mc", State: newState()}
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "adapters.mc.dir: is required"},
		{map[string]any{"dir": dir, "out_format": "edifact"}, "adapters.mc.out_format: must be one of xdis91, fhir-xml, fhir-json"},
		{map[string]any{"dir": dir, "self": map[string]any{"gln": "12345"}}, "adapters.mc.self.gln: must be a 13-digit GLN"},
		{map[string]any{"dir": dir, "out_format": "fhir-json", "self": map[string]any{"gln": "5790000000012"}}, "adapters.mc.self: gln and sor must be set"},
		{map[string]any{"dir": dir}, "adapters.mc.self: gln and sor must be set"},
		{map[string]any{"dir": dir, "max_resends": 5}, "adapters.mc.max_resends: must be 0 to 3"},
		{map[string]any{"dir": dir, "poll_intervall": "1s"}, "poll_intervall"},
		{map[string]any{"dir": dir, "ack_timeout": "soon"}, "ack_timeout"},
		{map[string]any{"dir": dir, "settle_time": "-1s"}, "adapters.mc.settle_time: must be a duration between 1ms and 1h"},
	} {
		_, err := adapters.Build(TypeName, deps, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
	a, err := adapters.Build(TypeName, deps, map[string]any{"dir": dir, "max_resends": 0, "self": map[string]any{"gln": "5790000000012", "sor": "123456789012345"}})
	if err != nil {
		t.Fatal(err)
	}
	c := a.(*Adapter).cfg
	if c.PollInterval.String() != "200ms" || c.AckTimeout.String() != "30m0s" || *c.MaxResends != 0 || c.OutFormat != OutXDIS91 || c.MaxBytes != 100_000_000 || c.SettleTime != 2*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	for _, d := range []string{"in", "processing", "processed", "error", "out"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s not created", d)
		}
	}
}

func TestInboundLetterIsPublishedAcknowledgedAndMoved(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	data := readFile(t, "samhub/letter-utf8.xml")
	e.drop(t, "brev1.xml", data)
	// Unfinished writes are left alone.
	if err := os.WriteFile(filepath.Join(e.dir, "in", ".brev2.xml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "in", "brev3.xml.tmp"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !a.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	if got := pub.ids(); len(got) != 1 || got[0] != "5790000000005#LTR00000000001" {
		t.Fatalf("published %v", got)
	}
	l := pub.letters[0]
	if l.Kind != letter.KindReferral || l.Source != "medcom" || l.Patient.CPR != "2509479989" || l.Original.Filename != "brev1.xml" {
		t.Errorf("letter %+v", l)
	}
	sameBytes(t, "original", l.Original.Data, data)
	if got := e.files(t, "processed"); len(got) != 1 || got[0] != "brev1.xml" {
		t.Fatalf("processed %v", got)
	}
	sameBytes(t, "processed file", e.read(t, "processed", "brev1.xml"), data)
	if got := e.files(t, "in"); strings.Join(got, ",") != "brev3.xml.tmp" {
		t.Errorf("in/ now %v (dotfiles hidden)", got)
	}
	acks := e.files(t, "out")
	if len(acks) != 1 || !strings.HasPrefix(acks[0], "xctl03-") {
		t.Fatalf("out %v", acks)
	}
	m := parseOut(t, e.read(t, "out", acks[0]))
	rc := m.Receipts[0]
	if rc.Type != oioxml.PositiveReceipt || rc.SenderEAN != "5790000000012" || rc.ReceiverEAN != "5790000000005" ||
		rc.OriginalEnvelopeIdentifier != "ENV00000000001" || rc.OriginalLetters[0].Identifier != "LTR00000000001" {
		t.Errorf("receipt %+v", rc)
	}
}

// Every OIOXML example: read correctly, receipts published as acknowledgements,
// positive receipts only where asked for, nothing acknowledged twice.
func TestExamplesThroughAdapter(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	for _, f := range []string{"DIS91_1.xml", "DIS91_2.xml", "CTL01_1.xml", "CTL02_1.xml", "CTL03_1.xml"} {
		e.drop(t, f, readFile(t, "oioxml/"+f))
	}
	a.Poll(context.Background(), pub)
	want := []string{ // threads run concurrently, so compare as sets
		"DKKMDKMDNET#BrevNr5678/1111FRE01095", "DKKMDKMDNET#BrevNr5678/1111MAN01095",
		"5790000120420#BrevNr5678/1111MAN01095", "5790000120420#BrevNr5678/1111FRE01095",
		"5790000120400#BrevNr00129", "5790000121526#12152000000203",
	}
	slices.Sort(want)
	gotIDs := pub.ids()
	slices.Sort(gotIDs)
	if got := strings.Join(gotIDs, " "); got != strings.Join(want, " ") {
		t.Fatalf("published\n %s\nwant\n %s", got, strings.Join(want, " "))
	}
	byID := map[string]*letter.Letter{}
	for _, l := range pub.letters {
		byID[l.ID] = l
	}
	for _, id := range []string{"DKKMDKMDNET#BrevNr5678/1111FRE01095", "DKKMDKMDNET#BrevNr5678/1111MAN01095", "5790000120420#BrevNr5678/1111MAN01095", "5790000120420#BrevNr5678/1111FRE01095"} {
		l := byID[id]
		if l == nil || l.Kind != letter.KindAcknowledgement || !strings.HasPrefix(l.InReplyTo, "5790000181872#1111") {
			t.Errorf("receipt letter %s: %+v", id, l)
		}
	}
	if l := byID["5790000121526#12152000000203"]; l == nil || l.Subject != "Undtagelsesredegørelse - fortsat individuel behandling" {
		t.Errorf("DIS91_2 letter: %+v", l)
	}
	// The examples say minuspositivkvitt and receipts are never receipted.
	if got := e.files(t, "out"); len(got) != 0 {
		t.Errorf("acknowledgements written: %v", got)
	}
	if got := e.files(t, "processed"); len(got) != 5 {
		t.Errorf("processed %v", got)
	}
	// What is kept of the two letters owed no receipt travels with them as
	// their checkpoints; the state store keeps nothing of them.
	for _, id := range []string{"5790000120400#BrevNr00129", "5790000121526#12152000000203"} {
		if rec, ok := readCheckpoint(pub.checkpoints[id]); !ok || rec.HubID != id || rec.Key != stateKey("in", id) || rec.Ack != nil {
			t.Errorf("checkpoint of %s: %+v", id, rec)
		}
	}
	if n := e.state.Keys("in."); n != 0 {
		t.Errorf("the state store holds %d records of stored letters, want none", n)
	}
}

func TestTwoLettersTwoReceipts(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	e.drop(t, "two.xml", readFile(t, "samhub/envelope-two-letters.xml"))
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 2 || pub.letters[1].Patient.ReplacementID != "0703921VJ4" {
		t.Fatalf("published %v", pub.ids())
	}
	out := e.files(t, "out")
	if len(out) != 2 {
		t.Fatalf("out %v", out)
	}
	got := map[string]bool{}
	for _, f := range out {
		rc := parseOut(t, e.read(t, "out", f)).Receipts[0]
		if len(rc.OriginalLetters) != 1 {
			t.Fatalf("receipt covers %d letters", len(rc.OriginalLetters))
		}
		got[rc.OriginalLetters[0].Identifier] = true
	}
	if !got["LTR00000000020"] || !got["LTR00000000021"] {
		t.Errorf("receipted %v", got)
	}
}

// A duplicate (same sender and letter id, new envelope) after a restart gets
// the identical acknowledgement again and is not published again.
func TestDuplicateAcrossRestart(t *testing.T) {
	e := newEnv(t)
	pub := newPub()
	data := readFile(t, "samhub/letter-windows-1252.xml")
	first0 := e.adapter(t, nil)
	e.drop(t, "first.xml", data)
	first0.Poll(context.Background(), pub)
	out := e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out %v", out)
	}
	first := e.read(t, "out", out[0])
	if err := os.Remove(filepath.Join(e.dir, "out", out[0])); err != nil { // the VANS client took it
		t.Fatal(err)
	}

	restarted := e.adapter(t, nil) // new instance, same state and directory
	e.clock.add(3600e9)
	resent := bytes.Replace(data, []byte("ENV00000000002"), []byte("ENV00000000099"), 1)
	e.drop(t, "second.xml", resent)
	restarted.Poll(context.Background(), pub)
	if n := len(pub.letters); n != 1 {
		t.Fatalf("duplicate published: %v", pub.ids())
	}
	if pub.duplicates != 1 || e.metric(t, "samhub_medcom_duplicates_total", "adapter", "medcom") != 1 {
		t.Errorf("duplicate counted %d times by the hub and %v by the adapter, want once each",
			pub.duplicates, e.metric(t, "samhub_medcom_duplicates_total", "adapter", "medcom"))
	}
	out = e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out %v", out)
	}
	sameBytes(t, "repeated acknowledgement", e.read(t, "out", out[0]), first)
	if got := e.files(t, "processed"); len(got) != 2 {
		t.Errorf("processed %v", got)
	}
}

func TestPublishFailureKeepsFileForRetry(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	pub.setFailAfter(1) // the second letter of the envelope fails
	data := readFile(t, "samhub/envelope-two-letters.xml")
	e.drop(t, "two.xml", data)
	if a.Poll(context.Background(), pub) {
		t.Fatal("poll reported success")
	}
	if got := e.files(t, "in"); len(got) != 1 || got[0] != "two.xml" {
		t.Fatalf("in %v", got)
	}
	sameBytes(t, "file put back", e.read(t, "in", "two.xml"), data)
	if p, o, s := e.files(t, "processed"), e.files(t, "out"), e.state.Keys("in."); len(p)+len(o)+s != 0 {
		t.Fatalf("processed %v, out %v, state %d: nothing may be acknowledged before all is published", p, o, s)
	}
	pub.setFailAfter(-1)
	if !a.Poll(context.Background(), pub) {
		t.Fatal("retry failed")
	}
	// The first letter is offered again and found stored; each letter is
	// stored and acknowledged exactly once.
	if got := strings.Join(pub.ids(), " "); got != "5790000000005#LTR00000000020 5790000000005#LTR00000000021" || pub.duplicates != 1 {
		t.Errorf("published %s, %d duplicates", got, pub.duplicates)
	}
	if got := e.files(t, "out"); len(got) != 2 {
		t.Errorf("out %v", got)
	}
	if got := e.files(t, "processed"); len(got) != 1 {
		t.Errorf("processed %v", got)
	}
}

func TestCrashRecoveryFromProcessing(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	data := readFile(t, "samhub/letter-iso-8859-1.xml")
	if err := os.WriteFile(filepath.Join(e.dir, "processing", "left.xml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	pub := newPub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, pub) }()
	eventually(t, "the left-over file to be processed", func() bool {
		_, err := os.Stat(filepath.Join(e.dir, "processed", "left.xml"))
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := pub.ids(); len(got) != 1 || got[0] != "5790000000005#LTR00000000003" {
		t.Errorf("published %v", got)
	}
	if got := pub.letters[0].Subject; got != "Henvisning til samråd æøå ÆØÅ" {
		t.Errorf("subject %q", got)
	}
	if got := e.files(t, "out"); len(got) != 1 {
		t.Errorf("out %v", got)
	}
}

func TestHostileAndInvalidFilesGoToError(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"max_bytes": 100_000})
	pub := newPub()
	want := map[string]string{
		"xxe-file.xml":            "DOCTYPE/ENTITY declarations are not allowed",
		"xxe-http.xml":            "DOCTYPE/ENTITY declarations are not allowed",
		"billion-laughs.xml":      "DOCTYPE/ENTITY declarations are not allowed",
		"deep-nesting.xml":        "nested deeper than 100 levels",
		"huge-attribute.xml":      "more than adapters.medcom.max_bytes (100000)",
		"wrong-charset.xml":       "invalid UTF-8",
		"undeclared-latin1.xml":   "invalid UTF-8",
		"unsupported-charset.xml": "unsupported charset",
		"truncated.xml":           "truncated",
		"not-xml.txt":             "input is not XML",
		"empty.xml":               "input is not XML",
	}
	originals := map[string][]byte{}
	for name := range want {
		originals[name] = readFile(t, "hostile/"+name)
		e.drop(t, name, originals[name])
	}
	originals["invalid-letter.xml"] = readFile(t, "samhub/invalid-letter.xml")
	want["invalid-letter.xml"] = "Emessage/ClinicalEmail[1]/Patient/CivilRegistrationNumber: must start with a real birth date"
	e.drop(t, "invalid-letter.xml", originals["invalid-letter.xml"])
	a.Poll(context.Background(), pub)

	if len(pub.letters) != 0 {
		t.Fatalf("published %v", pub.ids())
	}
	codes := map[string]string{
		"xxe-file.xml": "dtd", "xxe-http.xml": "dtd", "billion-laughs.xml": "dtd", "deep-nesting.xml": "too_deep",
		"huge-attribute.xml": "too_large", "wrong-charset.xml": "syntax", "undeclared-latin1.xml": "syntax",
		"unsupported-charset.xml": "charset", "truncated.xml": "syntax", "not-xml.txt": "syntax", "empty.xml": "syntax",
		"invalid-letter.xml": "invalid",
	}
	counted := map[string]int{}
	for name, msg := range want {
		sameBytes(t, name+" in error/", e.read(t, "error", name), originals[name])
		note := string(e.read(t, "error", name+".error.txt"))
		if !strings.Contains(note, msg) {
			t.Errorf("%s.error.txt = %q, want %q", name, note, msg)
		}
		acked := "no"
		if name == "invalid-letter.xml" {
			acked = "yes"
		}
		if !strings.HasSuffix(note, "\n\ncode: "+codes[name]+"\nacknowledgement sent: "+acked+"\n") {
			t.Errorf("%s.error.txt = %q, want code %s and acknowledgement sent %s", name, note, codes[name], acked)
		}
		counted[codes[name]]++
		for _, pd := range []string{"2509479989", "Elmer", "Bruno", "Kære"} {
			if strings.Contains(note, pd) {
				t.Errorf("%s.error.txt contains personal data %q", name, pd)
			}
		}
	}
	if fmt.Sprint(pub.rejected) != fmt.Sprint(counted) {
		t.Errorf("the hub was told of rejections %v, want %v", pub.rejected, counted)
	}
	// Only the invalid letter could be addressed: it gets a negative receipt
	// for the whole envelope (its letter id is too long to name).
	out := e.files(t, "out")
	if len(out) != 1 || !strings.HasPrefix(out[0], "xctl02-") {
		t.Fatalf("out %v", out)
	}
	rc := parseOut(t, e.read(t, "out", out[0])).Receipts[0]
	if rc.Type != oioxml.NegativeReceipt || rc.RefuseCode != oioxml.RefuseSyntax || rc.OriginalEnvelopeIdentifier != "ENV00000000030" ||
		!strings.Contains(rc.RefuseText, "Letter/Identifier: must be 1 to 14 characters") || strings.Contains(rc.RefuseText, "2509479989") {
		t.Errorf("negative receipt %+v", rc)
	}
}

// An invalid letter sent twice gets the same negative receipt twice.
func TestNegativeDuplicate(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	bad := bytes.Replace(readFile(t, "samhub/letter-utf8.xml"), []byte("<StatusCode>nytbrev"), []byte("<StatusCode>annulleretbrev"), 1)
	e.drop(t, "a.xml", bad)
	a.Poll(context.Background(), pub)
	out := e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out %v", out)
	}
	first := e.read(t, "out", out[0])
	rc := parseOut(t, first).Receipts[0]
	if rc.Type != oioxml.NegativeReceipt || rc.OriginalLetters[0].Identifier != "LTR00000000001" || rc.OriginalLetters[0].RefuseCode != oioxml.RefuseSyntax {
		t.Fatalf("receipt %+v", rc)
	}
	os.Remove(filepath.Join(e.dir, "out", out[0]))
	e.clock.add(60e9)
	e.drop(t, "b.xml", bad)
	a.Poll(context.Background(), pub)
	if out2 := e.files(t, "out"); len(out2) != 1 || out2[0] != out[0] {
		t.Fatalf("out %v", out2)
	}
	sameBytes(t, "second negative receipt", e.read(t, "out", out[0]), first)
	if len(pub.letters) != 0 || len(e.files(t, "error")) != 4 {
		t.Errorf("published %v, error/ %v", pub.ids(), e.files(t, "error"))
	}
}

func TestCheck(t *testing.T) {
	res := Check(readFile(t, "samhub/letter-utf8.xml"), xmlsafe.DefaultLimits())
	if !res.Valid() || res.Format != "xdis91" || res.Ack == nil {
		t.Fatalf("%+v", res)
	}
	if rc := parseOut(t, res.Ack).Receipts[0]; rc.Type != oioxml.PositiveReceipt || rc.SenderEAN != "5790000000012" {
		t.Errorf("ack %+v", rc)
	}
	res = Check(readFile(t, "oioxml/DIS91_1.xml"), xmlsafe.Limits{})
	if !res.Valid() || res.Ack != nil {
		t.Errorf("minuspositivkvitt: %+v", res)
	}
	res = Check(readFile(t, "samhub/invalid-letter.xml"), xmlsafe.DefaultLimits())
	if res.Valid() || len(res.Errors) != 4 || !strings.HasPrefix(res.Errors[0], "Emessage/ClinicalEmail[1]/Letter/Identifier: ") {
		t.Errorf("invalid: %q", res.Errors)
	}
	if res.Ack == nil || parseOut(t, res.Ack).Receipts[0].Type != oioxml.NegativeReceipt {
		t.Error("no negative receipt")
	}
	res = Check(readFile(t, "hostile/billion-laughs.xml"), xmlsafe.DefaultLimits())
	if res.Valid() || res.Ack != nil || !strings.Contains(res.Errors[0], "DOCTYPE") {
		t.Errorf("hostile: %+v", res)
	}
	res = Check(readFile(t, "oioxml/CTL03_1.xml"), xmlsafe.DefaultLimits())
	if !res.Valid() || res.Format != "oioxml-receipt" || res.Ack != nil {
		t.Errorf("receipt: %+v", res)
	}
	res = Check(readFile(t, "samhub/xbin01.xml"), xmlsafe.DefaultLimits())
	if !res.Valid() || res.Format != "xbin01" || res.Ack == nil {
		t.Errorf("XBIN01: %+v", res)
	} else if rc := parseOut(t, res.Ack).Receipts[0]; rc.Type != oioxml.PositiveReceipt || rc.OriginalLetters[0].VersionCode != oioxml.VersionXBIN01 {
		t.Errorf("XBIN01 receipt %+v", rc)
	}
}

// Workers run threads concurrently but keep one thread's letters in the
// order their files arrived.
func TestConcurrentPollKeepsThreadOrder(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	base := string(readFile(t, "samhub/letter-utf8.xml"))
	var want []string
	for i := range 30 {
		s := strings.Replace(base, "<Identifier>LTR00000000001</Identifier>", fmt.Sprintf("<Identifier>ORD%011d</Identifier>", i), 1)
		s = strings.Replace(s, "<Identifier>ENV00000000001</Identifier>", fmt.Sprintf("<Identifier>OEV%011d</Identifier>", i), 1)
		if i%2 == 1 { // odd letters belong to other threads
			s = strings.Replace(s, "0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5", fmt.Sprintf("%032x", i), 1)
		} else {
			want = append(want, fmt.Sprintf("5790000000005#ORD%011d", i))
		}
		e.drop(t, fmt.Sprintf("f-%03d.xml", i), []byte(s))
	}
	if !a.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	var got []string
	for _, id := range pub.ids() {
		if slices.Contains(want, id) {
			got = append(got, id)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("one thread's letters out of order:\n got %v\nwant %v", got, want)
	}
	if n := len(pub.ids()); n != 30 {
		t.Fatalf("published %d letters, want 30", n)
	}
}

// A file is picked up when it arrives, not at the next poll: with an hour
// between polls only the directory watch can find the second letter.
func TestArrivalWakesTheSource(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"poll_interval": "1h"})
	pub := newPub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, pub) }()
	data := readFile(t, "samhub/letter-iso-8859-1.xml")
	e.drop(t, "first.xml", data)
	eventually(t, "the first file to be processed", func() bool {
		_, err := os.Stat(filepath.Join(e.dir, "processed", "first.xml"))
		return err == nil
	})
	e.drop(t, "second.xml", data) // the same letter again: a duplicate, acknowledged again
	eventually(t, "the second file to be processed without a poll", func() bool {
		_, err := os.Stat(filepath.Join(e.dir, "processed", "second.xml"))
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := e.files(t, "out"); len(got) != 1 {
		t.Errorf("out %v: the duplicate must repeat the one acknowledgement", got)
	}
}

// A letter the hub refuses for good (too large to store) is not retried
// forever: the file goes to error/ and the sender gets a negative receipt,
// while a letter of the same envelope stored before it keeps its positive
// one.
func TestLetterTheHubRefusesIsRefusedNotRetried(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	pub.refuseAfter = 1
	data := readFile(t, "samhub/envelope-two-letters.xml")
	e.drop(t, "two.xml", data)
	if !a.Poll(context.Background(), pub) {
		t.Fatal("a refused letter is an answer, not a failure to retry")
	}
	if len(pub.letters) != 1 {
		t.Fatalf("stored %v; want the first letter only", pub.ids())
	}
	sameBytes(t, "file in error/", e.read(t, "error", "two.xml"), data)
	note := string(e.read(t, "error", "two.xml.error.txt"))
	if !strings.Contains(note, "letter_too_large") || !strings.Contains(note, "32 MB") || !strings.Contains(note, "1 earlier letter") {
		t.Errorf("error note %q", note)
	}
	if got := e.files(t, "in"); len(got) != 0 {
		t.Fatalf("in/ %v: the file must not come back", got)
	}
	types := map[string]int{}
	for _, name := range e.files(t, "out") {
		for _, rc := range parseOut(t, e.read(t, "out", name)).Receipts {
			types[rc.Type]++
			if rc.Type == oioxml.NegativeReceipt && (len(rc.OriginalLetters) != 1 || !strings.Contains(rc.OriginalLetters[0].RefuseText, "32 MB")) {
				t.Errorf("negative receipt %+v", rc)
			}
		}
	}
	if types[oioxml.PositiveReceipt] != 1 || types[oioxml.NegativeReceipt] != 1 {
		t.Fatalf("receipts %v; want one positive (stored) and one negative (refused)", types)
	}
}

// When the round's acknowledgements cannot be made durable (the disk
// fails), no file leaves processing/ as handled: the files go back to in/,
// and the next round answers them with the very acknowledgements already
// written, without storing the letters twice.
func TestRoundSyncFailurePutsFilesBack(t *testing.T) {
	if !roundSync {
		t.Skip("acknowledgements are synced one by one on this system")
	}
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	data := readFile(t, "samhub/envelope-two-letters.xml")
	e.drop(t, "two.xml", data)
	real := syncFS
	syncFS = func(string) error { return errors.New("I/O error") }
	t.Cleanup(func() { syncFS = real })
	if a.Poll(context.Background(), pub) {
		t.Fatal("poll reported success although the acknowledgements are not durable")
	}
	if got := e.files(t, "in"); len(got) != 1 || got[0] != "two.xml" {
		t.Fatalf("in %v: the file must go back for the next round", got)
	}
	if got := e.files(t, "processed"); len(got) != 0 {
		t.Fatalf("processed %v", got)
	}
	first := map[string][]byte{}
	for _, name := range e.files(t, "out") {
		first[name] = e.read(t, "out", name)
	}
	syncFS = real
	if !a.Poll(context.Background(), pub) {
		t.Fatal("second round failed")
	}
	if got := e.files(t, "processed"); len(got) != 1 {
		t.Fatalf("processed %v", got)
	}
	if n := len(pub.ids()); n != 2 {
		t.Errorf("published %v: the second round must recognise both letters", pub.ids())
	}
	out := e.files(t, "out")
	if len(out) != len(first) || len(out) != 2 {
		t.Fatalf("out %v, first round wrote %d", out, len(first))
	}
	for _, name := range out {
		sameBytes(t, "acknowledgement "+name, e.read(t, "out", name), first[name])
	}
}

// A MedCom OIOXML letter of a type the hub does not read (a referral in
// the XDIS91 namespace, a letter of another schema family) is refused with
// a negative receipt naming it, so its sender is not left waiting; it is
// kept byte for byte in error/. A receipt of another family gets none.
func TestUnreadLetterTypesGetANegativeReceipt(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	base := string(readFile(t, "samhub/letter-utf8.xml"))
	files := map[string][]byte{
		"referral.xml": []byte(strings.NewReplacer("<ClinicalEmail>", "<Referral>", "</ClinicalEmail>", "</Referral>", "LTR00000000001", "LTR00000000071").Replace(base)),
		"xdis22.xml": []byte(strings.NewReplacer(oioxml.NS2006, "http://rep.oio.dk/medcom.dk/xml/schemas/2019/03/31/",
			"LTR00000000001", "LTR00000000072", "ENV00000000001", "ENV00000000072").Replace(base)),
		"receipt.xml": bytes.ReplaceAll(readFile(t, "oioxml/CTL03_1.xml"), []byte("2005/08/07"), []byte("2019/03/31")),
	}
	for name, b := range files {
		e.drop(t, name, b)
	}
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 0 {
		t.Fatalf("published %v", pub.ids())
	}
	for name, b := range files {
		sameBytes(t, name+" in error/", e.read(t, "error", name), b)
	}
	refused := map[string]string{}
	for _, f := range e.files(t, "out") {
		rc := parseOut(t, e.read(t, "out", f)).Receipts[0]
		if rc.Type != oioxml.NegativeReceipt || len(rc.OriginalLetters) != 1 || rc.ReceiverEAN != "5790000000005" {
			t.Fatalf("%s: %+v", f, rc)
		}
		refused[rc.OriginalLetters[0].Identifier] = rc.OriginalLetters[0].RefuseCode + ": " + rc.OriginalLetters[0].RefuseText
	}
	if len(refused) != 2 || !strings.Contains(refused["LTR00000000071"], "letter type Referral is not read by this hub") ||
		!strings.Contains(refused["LTR00000000072"], "2019/03/31/\" is not one of") ||
		!strings.HasPrefix(refused["LTR00000000072"], oioxml.RefuseVersion) {
		t.Errorf("negative receipts %q, want one each for the referral and the letter of another family", refused)
	}
}

// A FHIR message in UTF-16 or Latin-1 is refused as FHIR (which is UTF-8
// only), coded charset, and kept byte for byte. UTF-16 JSON was read as
// OIOXML and told that ISO-8859-1 would do.
func TestFHIRInAnotherCharset(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	js := string(readFile(t, "fhir/Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json"))
	u16 := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(js)) {
		u16 = binary.LittleEndian.AppendUint16(u16, u)
	}
	latin1, err := charmap.ISO8859_1.NewEncoder().Bytes([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"utf16.json": u16, "latin1.json": latin1}
	for name, b := range files {
		e.drop(t, name, b)
	}
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 0 {
		t.Fatalf("published %v", pub.ids())
	}
	for name, b := range files {
		sameBytes(t, name+" in error/", e.read(t, "error", name), b)
		note := string(e.read(t, "error", name+".error.txt"))
		if !strings.Contains(note, "FHIR messages must be UTF-8") || strings.Contains(note, "ISO-8859-1") ||
			!strings.HasSuffix(note, "\n\ncode: charset\nacknowledgement sent: no\n") {
			t.Errorf("%s.error.txt = %q", name, note)
		}
	}
}

// A JSON array is refused as JSON, not as XML with "text outside the root
// element".
func TestCheckJSONArray(t *testing.T) {
	res := Check([]byte(`[{"resourceType":"Bundle","type":"message"}]`), xmlsafe.DefaultLimits())
	if res.Valid() || len(res.Errors) != 1 || res.Errors[0] != "json: the top level must be an object" || res.Ack != nil {
		t.Errorf("%+v", res)
	}
}
