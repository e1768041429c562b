package fhirmsg

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Small constructors for the node tree that the writers turn into FHIR XML
// or JSON. Kids must be given in FHIR's element order (XML needs it).

func prim(name, v string) *node {
	if v == "" {
		return nil
	}
	return &node{name: name, val: v, hasVal: true}
}

func cplx(name string, kids ...*node) *node {
	n := &node{name: name}
	for _, k := range kids {
		if k != nil {
			n.kids = append(n.kids, k)
		}
	}
	if len(n.kids) == 0 {
		return nil
	}
	return n
}

func list(n *node) *node {
	if n != nil {
		n.list = true
	}
	return n
}

func extension(url string, value *node) *node {
	if value == nil {
		return nil
	}
	return &node{name: "extension", url: url, list: true, kids: []*node{value}}
}

func ref(name, target string) *node { return cplx(name, prim("reference", target)) }

// absentPrim is primitive element name without a value, saying why with a
// data-absent-reason extension (e.g. "unknown").
func absentPrim(name, reason string) *node {
	return &node{name: name, absent: true, kids: []*node{extension(extAbsent, prim("valueCode", reason))}}
}

func coding(name, system, code string) *node {
	return cplx(name, prim("system", system), prim("code", code))
}

func meta(profile string) *node { return cplx("meta", list(prim("profile", profile))) }

// narrative is the human-readable text MedCom requires on every resource.
func narrative(text string) *node {
	return &node{name: "text", kids: []*node{prim("status", "generated"), {name: "div", narr: text}}}
}

func resource(typ, id, profile, text string, kids ...*node) *node {
	all := append([]*node{prim("id", id), meta(profile), narrative(text)}, kids...)
	return cplx(typ, all...)
}

func bundleEntry(fullURL string, res *node) *node {
	return list(cplx("entry", prim("fullUrl", fullURL), &node{name: "resource", kids: []*node{res}}))
}

// encode writes a Bundle node tree in the given encoding.
func encode(root *node, encoding string) ([]byte, error) {
	switch encoding {
	case EncodingXML:
		doc := etree.NewDocument()
		doc.WriteSettings.CanonicalAttrVal = true // keeps \n, \t, \r in value="" as &#xA; etc.
		doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
		el := doc.CreateElement(root.name)
		el.CreateAttr("xmlns", nsFHIR)
		for _, k := range root.kids {
			writeXML(el, k)
		}
		doc.Indent(2)
		return doc.WriteToBytes()
	case EncodingJSON:
		var buf bytes.Buffer
		writeJSONObject(&buf, root, root.name)
		var out bytes.Buffer
		if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
			return nil, fmt.Errorf("encode json: %w", err)
		}
		out.WriteByte('\n')
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("encoding: must be %q or %q", EncodingXML, EncodingJSON)
}

func writeXML(parent *etree.Element, n *node) {
	if n.name == "div" {
		div := parent.CreateElement("div")
		div.CreateAttr("xmlns", nsXHTML)
		div.SetText(fhirText(n.narr))
		return
	}
	el := parent.CreateElement(n.name)
	if n.url != "" {
		el.CreateAttr("url", n.url)
	}
	if n.hasVal {
		el.CreateAttr("value", fhirText(n.val))
	}
	for _, k := range n.kids {
		writeXML(el, k)
	}
}

func writeJSONObject(buf *bytes.Buffer, n *node, resourceType string) {
	buf.WriteByte('{')
	first := true
	key := func(k string) {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		writeJSONString(buf, k)
		buf.WriteByte(':')
	}
	if resourceType != "" {
		key("resourceType")
		writeJSONString(buf, resourceType)
	}
	if n.url != "" {
		key("url")
		writeJSONString(buf, n.url)
	}
	// Group same-name kids (first appearance keeps FHIR's order).
	var order []string
	groups := map[string][]*node{}
	for _, k := range n.kids {
		if _, ok := groups[k.name]; !ok {
			order = append(order, k.name)
		}
		groups[k.name] = append(groups[k.name], k)
	}
	for _, name := range order {
		g := groups[name]
		if g[0].absent {
			key("_" + name) // FHIR JSON puts a primitive's extensions beside it
		} else {
			key(name)
		}
		if g[0].list || len(g) > 1 {
			buf.WriteByte('[')
			for i, k := range g {
				if i > 0 {
					buf.WriteByte(',')
				}
				writeJSONValue(buf, k)
			}
			buf.WriteByte(']')
			continue
		}
		writeJSONValue(buf, g[0])
	}
	buf.WriteByte('}')
}

func writeJSONValue(buf *bytes.Buffer, n *node) {
	switch {
	case n.name == "div":
		writeJSONString(buf, `<div xmlns="`+nsXHTML+`">`+html.EscapeString(fhirText(n.narr))+`</div>`)
	case n.name == "resource" && len(n.kids) == 1:
		writeJSONObject(buf, n.kids[0], n.kids[0].name)
	case n.hasVal && len(n.kids) == 0 && n.url == "":
		if jsonBare(n) {
			buf.WriteString(n.val) // a number or a boolean (jsontypes.go)
			return
		}
		writeJSONString(buf, fhirText(n.val))
	default:
		writeJSONObject(buf, n, "")
	}
}

// writeJSONString quotes s without HTML escaping, so narratives stay readable.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
}

// fhirText is s as a FHIR string can hold it: FHIR's string type allows
// no control character but tab, CR and LF (and XML 1.0 cannot write one;
// etree would put U+FFFD in its place), nor U+FFFE and U+FFFF. They say
// nothing to a reader and are dropped, as the XDIS91 writer does; invalid
// UTF-8 becomes U+FFFD.
func fhirText(s string) string {
	clean := utf8.ValidString(s) && !strings.ContainsAny(s, "\uFFFE\uFFFF")
	for i := 0; clean && i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			clean = false
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
