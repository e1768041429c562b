// Package agendapdf writes the council's agenda as a PDF: a title with a
// few lines under it, then one section per child, each on a page of its
// own, as label–value rows. The caller gives every text already in the
// reader's language; the package only lays it out.
//
// The PDF is written in pure Go (codeberg.org/go-pdf/fpdf) with DejaVu
// Sans embedded in the binary (fonts/, licence in fonts/LICENSE: the
// Bitstream Vera licence, which allows embedding and redistribution), so
// Danish letters come out right and nothing is needed at run time: no
// fonts on the host, no browser.
package agendapdf

import (
	_ "embed"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"codeberg.org/go-pdf/fpdf"
)

var (
	//go:embed fonts/DejaVuSans.ttf
	regular []byte
	//go:embed fonts/DejaVuSans-Bold.ttf
	bold []byte
)

// Document is an agenda ready to lay out.
type Document struct {
	// Title heads the first page and, small, every later one.
	Title string
	// Lines stand under the title: the meeting's facts, who printed it.
	Lines []string
	// Notice stands out under the lines (the confidentiality note).
	Notice string
	// Empty is said when there are no sections.
	Empty string
	// Footer is on every page, before the page number.
	Footer string
	// PageOf numbers the pages: "{page}" and "{pages}" are replaced.
	PageOf   string
	Sections []Section
	// Lang is the document's language (da, en); Created its date.
	Lang    string
	Created time.Time
}

// Section is one child.
type Section struct {
	Heading string
	// Flag, when set, is shown under the heading as a warning.
	Flag string
	Rows []Row
}

// Row is a label and its lines.
type Row struct {
	Label string
	Lines []string
}

const (
	family   = "DejaVu"
	margin   = 18.0 // mm
	labelW   = 48.0 // mm, the label column
	lineH    = 5.0  // mm, body text
	bodySize = 10.0 // pt
)

var (
	ink    = [3]int{27, 31, 35}
	muted  = [3]int{87, 96, 106}
	warnFg = [3]int{180, 35, 24}
	rule   = [3]int{208, 215, 222}
)

// Write lays d out on A4 pages and writes the PDF to w.
func Write(w io.Writer, d Document) error {
	d = d.bmp()
	f := fpdf.New("P", "mm", "A4", "")
	f.SetMargins(margin, margin, margin)
	f.SetAutoPageBreak(true, margin+6)
	f.AddUTF8FontFromBytes(family, "", regular)
	f.AddUTF8FontFromBytes(family, "B", bold)
	f.SetTitle(d.Title, true)
	f.SetCreator("Samhub", true)
	f.SetAuthor("Samhub", true)
	if d.Lang != "" {
		f.SetLang(d.Lang)
	}
	if !d.Created.IsZero() {
		f.SetCreationDate(d.Created)
		f.SetModificationDate(d.Created)
	}
	f.AliasNbPages("{nb}")
	f.SetHeaderFunc(func() {
		if f.PageNo() == 1 {
			return
		}
		f.SetFont(family, "", 8)
		color(f, muted)
		f.CellFormat(0, 4, d.Title, "", 1, "L", false, 0, "")
		f.Ln(4)
	})
	f.SetFooterFunc(func() {
		f.SetY(-margin)
		f.SetFont(family, "", 8)
		color(f, muted)
		page := strings.NewReplacer("{page}", strconv.Itoa(f.PageNo()), "{pages}", "{nb}").Replace(d.PageOf)
		f.CellFormat(0, 4, d.Footer, "", 0, "L", false, 0, "")
		f.SetX(margin)
		f.CellFormat(0, 4, page, "", 0, "R", false, 0, "")
	})

	f.AddPage()
	f.SetFont(family, "B", 16)
	color(f, ink)
	f.MultiCell(0, 7, d.Title, "", "L", false)
	f.Ln(1)
	f.SetFont(family, "", bodySize)
	color(f, muted)
	for _, l := range d.Lines {
		f.MultiCell(0, lineH, l, "", "L", false)
	}
	if d.Notice != "" {
		f.Ln(1)
		f.SetFont(family, "B", bodySize)
		color(f, warnFg)
		f.MultiCell(0, lineH, d.Notice, "", "L", false)
	}
	if len(d.Sections) == 0 {
		f.Ln(4)
		f.SetFont(family, "", bodySize)
		color(f, ink)
		f.MultiCell(0, lineH, d.Empty, "", "L", false)
	}
	for i, s := range d.Sections {
		if i > 0 {
			f.AddPage()
		} else {
			f.Ln(5)
		}
		section(f, s)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("agenda PDF: %w", err)
	}
	return f.Output(w)
}

func section(f *fpdf.Fpdf, s Section) {
	pageW, _ := f.GetPageSize()
	width := pageW - 2*margin
	f.SetDrawColor(rule[0], rule[1], rule[2])
	f.Line(margin, f.GetY(), margin+width, f.GetY())
	f.Ln(2)
	f.SetFont(family, "B", 13)
	color(f, ink)
	f.MultiCell(0, 6.5, s.Heading, "", "L", false)
	if s.Flag != "" {
		f.SetFont(family, "B", bodySize)
		color(f, warnFg)
		f.MultiCell(0, lineH, s.Flag, "", "L", false)
	}
	f.Ln(2)
	valueW := width - labelW
	for _, r := range s.Rows {
		f.SetFont(family, "B", bodySize)
		labels := f.SplitText(r.Label, labelW-2)
		f.SetFont(family, "", bodySize)
		var values []string
		for _, l := range r.Lines {
			values = append(values, f.SplitText(l, valueW)...)
		}
		n := max(len(labels), len(values), 1)
		// A row is kept on one page where it fits on one.
		_, pageH := f.GetPageSize()
		if f.GetY()+float64(n)*lineH > pageH-margin-6 && float64(n)*lineH < pageH-2*margin {
			f.AddPage()
		}
		y, page := f.GetY(), f.PageNo()
		f.SetFont(family, "B", bodySize)
		color(f, muted)
		f.SetXY(margin, y)
		f.MultiCell(labelW-2, lineH, strings.Join(labels, "\n"), "", "L", false)
		yl := f.GetY()
		f.SetFont(family, "", bodySize)
		color(f, ink)
		f.SetXY(margin+labelW, y)
		f.MultiCell(valueW, lineH, strings.Join(values, "\n"), "", "L", false)
		if f.PageNo() == page {
			f.SetY(max(yl, f.GetY()))
		}
		f.Ln(1.5)
	}
}

func color(f *fpdf.Fpdf, c [3]int) { f.SetTextColor(c[0], c[1], c[2]) }

// bmp returns d with every character beyond the Basic Multilingual Plane
// (an emoji or a mathematical letter in a name a letter carried) replaced
// by U+FFFD: fpdf's UTF-8 fonts cover the BMP only and refuse the whole
// document for one such character, which left the coordinator without
// the agenda.
func (d Document) bmp() Document {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r > 0xFFFF {
				return unicode.ReplacementChar
			}
			return r
		}, s)
	}
	all := func(ss []string) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = clean(s)
		}
		return out
	}
	d.Title, d.Notice, d.Empty, d.Footer, d.PageOf = clean(d.Title), clean(d.Notice), clean(d.Empty), clean(d.Footer), clean(d.PageOf)
	d.Lines = all(d.Lines)
	secs := make([]Section, len(d.Sections))
	for i, s := range d.Sections {
		rows := make([]Row, len(s.Rows))
		for j, r := range s.Rows {
			rows[j] = Row{Label: clean(r.Label), Lines: all(r.Lines)}
		}
		secs[i] = Section{Heading: clean(s.Heading), Flag: clean(s.Flag), Rows: rows}
	}
	d.Sections = secs
	return d
}
