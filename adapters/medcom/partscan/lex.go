package partscan

// Which values a message's root lifts out.
type rule int

const (
	ruleNone   rule = iota
	ruleBundle      // FHIR XML: <data value="…"/>
	ruleVANS        // VANSEnvelope: <Data>…</Data>
)

// maxAttrs bounds the attributes the scan follows on one element (the
// parser refuses more than its own limit, 256 by default).
const maxAttrs = 1024

// xml follows tags, comments, CDATA sections and processing instructions,
// and lifts the values its root's rule names.
func (s *scanner) xml() error {
	r := ruleNone
	first := true
	opened := "" // local name of the element whose start tag just ended, while its text is read
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			return err
		}
		if b[0] != '<' {
			if r == ruleVANS && opened == "Data" {
				opened = ""
				if err := s.value('<', true, func() bool { return s.hasPrefix("</") }); err != nil {
					return err
				}
				continue
			}
			opened = ""
			// Ordinary text up to the next tag.
			for {
				b, err := s.br.Peek(1)
				if err != nil {
					return err
				}
				if b[0] == '<' {
					break
				}
				s.copyByte()
			}
			continue
		}
		opened = ""
		switch {
		case s.hasPrefix("<!--"):
			err = s.copyUntil("-->")
		case s.hasPrefix("<![CDATA["):
			err = s.copyUntil("]]>")
		case s.hasPrefix("<?"):
			err = s.copyUntil("?>")
		case s.hasPrefix("<!"):
			return errStop // a DTD: the parser refuses it
		case s.hasPrefix("</"):
			err = s.copyUntil(">")
		default:
			var name string
			var empty bool
			name, empty, err = s.startTag(r)
			if err == nil && first {
				first = false
				switch local(name) {
				case "Bundle":
					r = ruleBundle
					// The root's own attributes were read before the rule
					// was known; a Bundle's root carries no data value.
				case "VANSEnvelope":
					r, s.envelope = ruleVANS, true
				}
			}
			if err == nil && !empty {
				opened = local(name)
			}
		}
		if err != nil {
			return err
		}
	}
}

// startTag copies a start tag, lifting the value attribute of a data
// element under ruleBundle. It reports the element's name and whether the
// tag closed it ("/>").
func (s *scanner) startTag(r rule) (name string, empty bool, err error) {
	s.copyByte() // '<'
	if name, err = s.name(); err != nil {
		return "", false, err
	}
	if name == "" {
		return "", false, errStop
	}
	for attrs := 0; ; attrs++ {
		if attrs > maxAttrs {
			return "", false, errStop
		}
		if err := s.skipSpace(); err != nil {
			return "", false, err
		}
		b, err := s.br.Peek(2)
		if err != nil && len(b) == 0 {
			return "", false, err
		}
		switch {
		case b[0] == '>':
			s.copyByte()
			return name, false, nil
		case len(b) == 2 && b[0] == '/' && b[1] == '>':
			s.copyByte()
			s.copyByte()
			return name, true, nil
		}
		attr, err := s.name()
		if err != nil {
			return "", false, err
		}
		if attr == "" {
			return "", false, errStop // not an attribute: the parser says what
		}
		if err := s.skipSpace(); err != nil {
			return "", false, err
		}
		if c, err := s.copyByte(); err != nil || c != '=' {
			return "", false, errStop
		}
		if err := s.skipSpace(); err != nil {
			return "", false, err
		}
		q, err := s.copyByte()
		if err != nil {
			return "", false, err
		}
		if q != '"' && q != '\'' {
			return "", false, errStop
		}
		if r == ruleBundle && local(name) == "data" && local(attr) == "value" {
			if err := s.value(q, true, nil); err != nil {
				return "", false, err
			}
		}
		// The rest of the value (all of it when not lifted) and its quote.
		if err := s.copyUntil(string(q)); err != nil {
			return "", false, err
		}
	}
}

// json follows strings and containers and lifts the string value of each
// "data" member.
func (s *scanner) json() error {
	var objects []bool // the open containers: true for an object
	key := ""          // the member name of the value that follows
	expectKey := false
	for {
		c, err := s.copyByte()
		if err != nil {
			return err
		}
		switch c {
		case '{':
			objects = append(objects, true)
			expectKey = true
		case '[':
			objects = append(objects, false)
			expectKey = false
		case '}', ']':
			if len(objects) > 0 {
				objects = objects[:len(objects)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(objects) > 0 && objects[len(objects)-1]
		case ':':
			expectKey = false
		case '"':
			inObject := len(objects) > 0 && objects[len(objects)-1]
			switch {
			case inObject && expectKey:
				k, err := s.jsonString(maxName)
				if err != nil {
					return err
				}
				key = k
			case inObject && key == "data":
				key = ""
				if err := s.value('"', false, nil); err != nil {
					return err
				}
				// The rest of the string (all of it when not lifted).
				if _, err := s.jsonString(0); err != nil {
					return err
				}
			default:
				key = ""
				if _, err := s.jsonString(0); err != nil {
					return err
				}
			}
		}
		if len(objects) > 10000 {
			return errStop // far beyond the parser's depth limit
		}
	}
}

// jsonString copies the rest of a string, its closing quote included. It
// returns the string's raw bytes when they are at most keep long.
func (s *scanner) jsonString(keep int) (string, error) {
	var raw []byte
	esc := false
	for {
		c, err := s.copyByte()
		if err != nil {
			return "", err
		}
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			if len(raw) > keep {
				return "", nil
			}
			return string(raw), nil
		}
		if len(raw) <= keep {
			raw = append(raw, c)
		}
	}
}
