package email

import (
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
)

// htmlToText extracts readable text from an HTML mail body. There is no
// HTML parser among the project's modules, so this uses encoding/xml in its
// forgiving HTML mode (no strict nesting, HTML entities, void elements); on
// a token it cannot read it keeps what it has and strips the rest of tags.
func htmlToText(s string) string {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity

	var b strings.Builder
	skip := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rest := s[min(int(d.InputOffset()), len(s)):]
				b.WriteString(tagRe.ReplaceAllString(rest, " "))
			}
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch strings.ToLower(t.Name.Local) {
			case "script", "style", "head":
				skip++
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table":
				b.WriteString("\n")
			}
		case xml.EndElement:
			switch strings.ToLower(t.Name.Local) {
			case "script", "style", "head":
				if skip > 0 {
					skip--
				}
			case "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table":
				b.WriteString("\n")
			}
		case xml.CharData:
			if skip == 0 {
				b.Write(t)
			}
		}
	}
	return tidyText(b.String())
}

var (
	tagRe   = regexp.MustCompile(`<[^>]*>`)
	spaceRe = regexp.MustCompile(`[ \t\r\f\v]+`)
	blankRe = regexp.MustCompile(`\n{3,}`)
)

// tidyText collapses the whitespace HTML layout leaves behind.
func tidyText(s string) string {
	lines := strings.Split(s, "\n")
	for i, ln := range lines {
		lines[i] = strings.TrimSpace(spaceRe.ReplaceAllString(ln, " "))
	}
	return strings.TrimSpace(blankRe.ReplaceAllString(strings.Join(lines, "\n"), "\n\n"))
}
