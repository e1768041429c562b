package agendapdf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The PDF is read back with poppler (pdftotext, pdffonts, pdfinfo), a
// reader that shares no code with the writer. make test-tools installs it.
func poppler(t *testing.T, tool string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed: apt-get install poppler-utils (make test-tools does, as root)", tool)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return string(out)
}

// Read writes d and returns the PDF's path, its text page by page and
// its font list as poppler reads them.
func read(t *testing.T, d Document) (string, []string, string) {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, d); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agenda.pdf")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	info := poppler(t, "pdfinfo", path)
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("pdfinfo names no page count:\n%s", info)
	}
	n, _ := strconv.Atoi(m[1])
	var pages []string
	for i := 1; i <= n; i++ {
		pages = append(pages, poppler(t, "pdftotext", "-layout", "-enc", "UTF-8", "-f", strconv.Itoa(i), "-l", strconv.Itoa(i), path, "-"))
	}
	return path, pages, poppler(t, "pdffonts", path)
}

func TestDanishLettersAndOneChildAPage(t *testing.T) {
	d := Document{
		Title:  "Dagsorden: samrådsmøde tirsdag den 10. marts 2026 kl. 13.00",
		Lines:  []string{"3 af 6 pladser taget", "Udskrevet af koordinator"},
		Notice: "Fortroligt: indeholder personoplysninger om børn.",
		Footer: "Samrådet for Børn og Unge",
		PageOf: "Side {page} af {pages}",
		Lang:   "da",
		Sections: []Section{
			{Heading: "1. Åse Test Kjærgård", Rows: []Row{{Label: "Henvisende læge", Lines: []string{"Lægehuset Ærø (GLN 5790000000005)"}},
				{Label: "Samtykke", Lines: []string{"kommunen: givet", "børne- og ungdomspsykiatrien: mangler"}}}},
			{Heading: "2. Cæcar Test Østergård", Flag: "Ingen anbefaling 35 dage efter henvisningen", Rows: []Row{{Label: "Anbefaling", Lines: []string{"ingen endnu"}}}},
			{Heading: "3. Birgit", Rows: []Row{{Label: "Dokumenter", Lines: []string{strings.Repeat("Notat fra børne- og ungdomspsykiatriens EPJ – æøå ÆØÅ. ", 30)}}}},
		},
		Created: time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC),
	}
	_, pages, fonts := read(t, d)
	if len(pages) != 3 {
		t.Fatalf("%d pages, want one per child", len(pages))
	}
	for i, want := range [][]string{
		{"Dagsorden: samrådsmøde tirsdag den 10. marts 2026", "Fortroligt: indeholder personoplysninger om børn.", "1. Åse Test Kjærgård", "Lægehuset Ærø", "børne- og ungdomspsykiatrien: mangler", "Side 1 af 3"},
		{"2. Cæcar Test Østergård", "Ingen anbefaling 35 dage efter henvisningen", "ingen endnu", "Side 2 af 3", "Samrådet for Børn og Unge"},
		{"3. Birgit", "æøå ÆØÅ", "Side 3 af 3"},
	} {
		for _, w := range want {
			if !strings.Contains(pages[i], w) {
				t.Errorf("page %d: missing %q in\n%s", i+1, w, pages[i])
			}
		}
	}
	if strings.Contains(pages[0], "Cæcar") || strings.Contains(pages[1], "Åse") {
		t.Error("two children share a page")
	}
	// Both faces (regular, bold) embedded with a Unicode map: nothing is
	// looked up on the host, and the text can be searched and copied.
	if n := len(regexp.MustCompile(`(?m)^utf8dejavuB?\s+CID TrueType\s+Identity-H\s+yes\s+\w+\s+yes\b`).FindAllString(fonts, -1)); n != 2 {
		t.Errorf("want DejaVu Sans regular and bold embedded with a Unicode map, got:\n%s", fonts)
	}
}

func TestEmptyAgendaSaysSo(t *testing.T) {
	_, pages, _ := read(t, Document{Title: "Dagsorden", Empty: "Ingen henvisninger har plads på mødet endnu.", PageOf: "Side {page} af {pages}"})
	if len(pages) != 1 || !strings.Contains(pages[0], "Ingen henvisninger har plads på mødet endnu.") || !strings.Contains(pages[0], "Side 1 af 1") {
		t.Errorf("empty agenda: %q", pages)
	}
}

// A name with a character beyond the Basic Multilingual Plane (an emoji, a
// mathematical letter) still gives the agenda, with U+FFFD in its place.
func TestCharactersBeyondTheBMPDoNotStopTheAgenda(t *testing.T) {
	d := Document{Title: "Dagsorden 😀", PageOf: "Side {page} af {pages}", Sections: []Section{{Heading: "1. Bruno 😀 Test Elmer",
		Rows: []Row{{Label: "Henvisende læge", Lines: []string{"Lægehuset 𝔄rø"}}}}}}
	_, pages, _ := read(t, d)
	if len(pages) != 1 || !strings.Contains(pages[0], "1. Bruno \uFFFD Test Elmer") || !strings.Contains(pages[0], "Lægehuset \uFFFDrø") {
		t.Errorf("agenda with characters beyond the BMP: %q", pages)
	}
	if d.Sections[0].Heading != "1. Bruno 😀 Test Elmer" {
		t.Error("Write changed the caller's document")
	}
}

// BenchmarkWrite: one meeting of six children, as the console exports it.
func BenchmarkWrite(b *testing.B) {
	d := Document{Title: "Dagsorden", PageOf: "Side {page} af {pages}"}
	for i := range 6 {
		d.Sections = append(d.Sections, Section{Heading: strconv.Itoa(i+1) + ". Åse Test Kjærgård", Rows: []Row{
			{Label: "Henvisende læge", Lines: []string{"Lægehuset Ærø (GLN 5790000000005)"}},
			{Label: "Samtykke", Lines: []string{"kommunen: givet", "egen læge: givet", "forældrene: mangler"}},
			{Label: "Anbefaling", Lines: []string{"leveret til egen læge", "positiv kvittering"}},
		}})
	}
	for b.Loop() {
		var buf bytes.Buffer
		if err := Write(&buf, d); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
	}
}
