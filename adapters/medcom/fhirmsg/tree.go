package fhirmsg

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// node is one FHIR element in a form shared by the XML and JSON encodings:
// a primitive has a value, a complex element has kids, repeated elements are
// sibling nodes with the same name. A resource sits under a "resource" node
// (Bundle.entry.resource) as a single kid named by its resource type, which
// is how FHIR XML writes it; JSON's resourceType is turned into that shape.
type node struct {
	name   string
	val    string
	hasVal bool
	url    string  // extension url
	kids   []*node //
	list   bool    // writing: a JSON array member
	narr   string  // writing: narrative div text (plain; the writers escape it)
	absent bool    // writing: a primitive without value, only extensions (JSON "_name")
}

func (n *node) all(name string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

func (n *node) first(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// at follows a dotted path of first children, e.g. "eventCoding.code".
func (n *node) at(path string) *node {
	for _, p := range strings.Split(path, ".") {
		n = n.first(p)
		if n == nil {
			return nil
		}
	}
	return n
}

// str returns the primitive value at path, or "".
func (n *node) str(path string) string {
	if m := n.at(path); m != nil {
		return m.val
	}
	return ""
}

// ext returns the extensions of n with the given url.
func (n *node) ext(url string) *node {
	for _, e := range n.all("extension") {
		if e.url == url {
			return e
		}
	}
	return nil
}

// resource returns the resource held by a "resource" node and its type.
func (n *node) resource() (*node, string) {
	if n == nil || len(n.kids) != 1 {
		return nil, ""
	}
	return n.kids[0], n.kids[0].name
}

// fromXML converts an etree element (FHIR XML) into a node tree. The XHTML
// narrative is skipped: nothing is read from it.
func fromXML(e *etree.Element) *node {
	n := &node{name: e.Tag}
	for _, a := range e.Attr {
		switch a.Key {
		case "value":
			n.val, n.hasVal = a.Value, true
		case "url":
			n.url = a.Value
		}
	}
	for _, c := range e.ChildElements() {
		if c.Tag == "div" && c.NamespaceURI() == nsXHTML {
			continue
		}
		n.kids = append(n.kids, fromXML(c))
	}
	return n
}

// fromJSON decodes FHIR JSON into a node tree named by its resourceType.
// xmlsafe.DecodeJSON checks size, nesting, tokens and string lengths as it
// reads, in one pass over data.
// A name repeated in one object is returned as a finding: the message is
// read (with the last value) so that its sender can be answered, and
// refused.
func fromJSON(data []byte, lim xmlsafe.Limits) (*node, []error, error) {
	v, dups, err := xmlsafe.DecodeJSONDuplicates(data, lim)
	if err != nil {
		return nil, nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("json: the top level must be an object")
	}
	rt, _ := obj["resourceType"].(string)
	if rt == "" {
		return nil, nil, fmt.Errorf("json: resourceType: missing at the top level")
	}
	var findings []error
	for _, p := range dups {
		findings = append(findings, ferr(pointerPath(rt, p), "appears twice in one JSON object: each name may appear once, or readers disagree on its value").coded(IssueBadSyntax))
	}
	findings = append(findings, jsonTypes(rt, obj)...)
	n := &node{name: rt}
	jsonObject(n, obj)
	return n, findings, nil
}

// pointerPath writes a JSON Pointer as a FHIR element path:
// /entry/2/resource/status → Bundle.entry[2].resource.status.
func pointerPath(root, ptr string) string {
	var b strings.Builder
	b.WriteString(root)
	for seg := range strings.SplitSeq(strings.TrimPrefix(ptr, "/"), "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(seg); err == nil {
			b.WriteString("[" + seg + "]")
			continue
		}
		b.WriteString("." + seg)
	}
	return b.String()
}

func jsonObject(n *node, obj map[string]any) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		if k == "resourceType" || k == "div" {
			continue
		}
		// "_x" holds the id and extensions of primitive x, e.g. a
		// data-absent-reason on a patient's unknown family name ("_family"),
		// possibly with no "x" at all; both are read as one element x.
		if base, ok := strings.CutPrefix(k, "_"); ok {
			if _, both := obj[base]; both || base == "" {
				continue
			}
			k = base
		}
		keys = append(keys, k)
	}
	sort.Strings(keys) // maps lose key order; same-name order comes from arrays
	for _, k := range keys {
		v, ext := obj[k], obj["_"+k]
		switch v := v.(type) {
		case []any:
			exts, _ := ext.([]any) // aligned with v, null where an item has none
			for i := range max(len(v), len(exts)) {
				var item, itemExt any
				if i < len(v) {
					item = v[i]
				}
				if i < len(exts) {
					itemExt = exts[i]
				}
				if c := jsonPrimitive(k, item, itemExt); c != nil {
					c.list = true
					n.kids = append(n.kids, c)
				}
			}
		default:
			if k == "url" && (n.name == "extension" || n.name == "modifierExtension") {
				n.url, _ = v.(string)
				continue
			}
			if exts, ok := ext.([]any); ok && v == nil { // a repeating primitive known only by its extensions
				for _, e := range exts {
					if c := jsonPrimitive(k, nil, e); c != nil {
						c.list = true
						n.kids = append(n.kids, c)
					}
				}
				continue
			}
			if c := jsonPrimitive(k, v, ext); c != nil {
				n.kids = append(n.kids, c)
			}
		}
	}
}

// jsonPrimitive reads value v of element name together with its "_name"
// companion ext (an object holding id and extension), either of which may be
// absent.
func jsonPrimitive(name string, v, ext any) *node {
	n := jsonValue(name, v)
	e, _ := ext.(map[string]any)
	if len(e) == 0 {
		return n
	}
	if n == nil {
		n = &node{name: name}
	} else if len(n.kids) > 0 {
		return n // a complex value has no "_" companion in FHIR JSON
	}
	jsonObject(n, e)
	return n
}

func jsonValue(name string, v any) *node {
	n := &node{name: name}
	switch v := v.(type) {
	case map[string]any:
		if rt, ok := v["resourceType"].(string); ok && name == "resource" {
			r := &node{name: rt}
			jsonObject(r, v)
			n.kids = []*node{r}
			return n
		}
		jsonObject(n, v)
	case string:
		n.val, n.hasVal = v, true
	case json.Number:
		n.val, n.hasVal = v.String(), true
	case bool:
		n.val, n.hasVal = strconv.FormatBool(v), true
	case nil:
		return nil
	default: // nested arrays do not occur in FHIR JSON
		return nil
	}
	return n
}
