package fhirmsg

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// maxSalvagedMessage bounds what is decoded of a VANSEnvelope's Data to
// read the head of its message: the MessageHeader is its first entry.
const maxSalvagedMessage = 1 << 20

// salvageKeep are the values Salvage reads of a Bundle's entries: each
// entry's fullUrl, type and id, the MessageHeader's event, source,
// sender and destinations, and the identifiers of Organizations (the
// only resource whose identifiers are kept: a Patient's is a CPR number).
var salvageKeep = regexp.MustCompile(`^entry\[(\d+)\]\.(fullUrl\[0\]|resource\[0\]\.(resourceType\[0\]|id\[0\]|eventCoding\[0\]\.code\[0\]|source\[0\]\.endpoint\[0\]|sender\[0\]\.reference\[0\]|destination\[\d+\]\.(endpoint\[0\]|receiver\[0\]\.reference\[0\]|extension\[\d+\]\.(url\[0\]|valueCoding\[0\]\.code\[0\]))|identifier\[\d+\]\.(system\[0\]|value\[0\])))$`)

// Salvage reads head, the part of a message before the fault that made it
// unreadable as XML or JSON (xmlsafe.Error.Offset), for what a negative
// acknowledgement needs: the MessageHeader's id, event, source and
// destination, and the SOR and GLN numbers of the sender and the primary
// receiver, from the Organizations they reference or, in a VANSEnvelope,
// the envelope's sender and receiver. The head is scanned, not parsed
// (xmlsafe.HeadXML, HeadJSON): nothing else of it is kept. It returns nil
// when no MessageHeader id was read before the fault; the caller checks
// that the parties were.
func Salvage(head []byte, lim xmlsafe.Limits) *Message {
	return salvage(head, lim, 0)
}

func salvage(head []byte, lim xmlsafe.Limits, level int) *Message {
	body, err := utf8Body(head)
	if err != nil || len(body) == 0 {
		return nil
	}
	type entry struct {
		fullURL, typ, id string
		f                map[string]string // the rest, by path below resource[0]
	}
	entries := map[int]*entry{}
	get := func(i int) *entry {
		if entries[i] == nil {
			entries[i] = &entry{f: map[string]string{}}
		}
		return entries[i]
	}
	var vans map[string]string
	var data []byte // a VANSEnvelope's Data as far as it goes
	keep := func(path string) bool {
		m := salvageKeep.FindStringSubmatch(path)
		if m == nil {
			return false
		}
		if strings.Contains(path, ".identifier[") {
			i, _ := strconv.Atoi(m[1])
			return entries[i] != nil && entries[i].typ == "Organization"
		}
		return true
	}
	leaf := func(path, v string) {
		m := salvageKeep.FindStringSubmatch(path)
		if m == nil {
			return
		}
		i, _ := strconv.Atoi(m[1])
		e := get(i)
		switch rest := strings.TrimPrefix(path, "entry["+m[1]+"]."); rest {
		case "fullUrl[0]":
			e.fullURL = v
		case "resource[0].resourceType[0]":
			e.typ = v
		case "resource[0].id[0]":
			e.id = v
		default:
			e.f[strings.TrimPrefix(rest, "resource[0].")] = v
		}
	}
	encoding := EncodingXML
	switch body[0] {
	case '{':
		encoding = EncodingJSON
		typed := false
		xmlsafe.HeadJSON(body, lim, xmlsafe.HeadOptions{
			Keep: func(path string) bool { return path == "resourceType[0]" || typed && keep(path) },
			Leaf: func(path, v string) {
				if path == "resourceType[0]" {
					typed = v == "Bundle"
					return
				}
				leaf(path, v)
			},
		})
	case '<':
		if enc := declaredEncoding(body); enc != "" && !strings.EqualFold(enc, "utf-8") && !strings.EqualFold(enc, "utf8") {
			return nil
		}
		root := ""
		xmlsafe.HeadXML(body, lim, xmlsafe.HeadOptions{
			TypeWrapper: "resource",
			Keep: func(path string) bool {
				if root == "" {
					root, _, _ = strings.Cut(path, ".")
				}
				switch {
				case root == "Bundle[0]" && level <= 1:
					return keep(strings.TrimPrefix(path, "Bundle[0]."))
				case root == "VANSEnvelope[0]" && level == 0:
					switch strings.TrimPrefix(path, "VANSEnvelope[0].") {
					case "SenderID[0]", "ReceiverID[0]", "EnvelopeIdentifier[0]":
						return true
					}
					return strings.HasPrefix(path, "VANSEnvelope[0].Message[0].MetaInformation[0].Transport[0].ServiceTag[")
				}
				return false
			},
			Leaf: func(path, v string) {
				if rest, ok := strings.CutPrefix(path, "Bundle[0]."); ok {
					leaf(rest, v)
					return
				}
				if vans == nil {
					vans = map[string]string{}
				}
				vans[strings.TrimPrefix(path, "VANSEnvelope[0].")] = v
			},
			SpanKeep: func(path string) bool {
				return level == 0 && path == "VANSEnvelope[0].Message[0].Data[0]"
			},
			Span: func(_ string, from, to int) {
				if data == nil {
					data = body[from:to]
				}
			},
		})
		if root == "VANSEnvelope[0]" {
			return salvageVANS(vans, data, lim)
		}
		if root != "Bundle[0]" {
			return nil
		}
	default:
		return nil
	}

	var header *entry
	for i := 0; i < len(entries) && header == nil; i++ {
		if e := entries[i]; e != nil && e.typ == "MessageHeader" {
			header = e
		}
	}
	if header == nil || header.id == "" {
		return nil
	}
	h := header.f
	m := &Message{Encoding: encoding, HeaderID: header.id, Event: h["eventCoding[0].code[0]"]}
	org := func(ref string) Organization {
		var o Organization
		if ref == "" {
			return o
		}
		for _, e := range entries {
			if e.typ != "Organization" || !(e.fullURL == ref || strings.HasSuffix(e.fullURL, "/"+ref) || e.typ+"/"+e.id == ref) {
				continue
			}
			for k := 0; ; k++ {
				sys, ok := e.f["identifier["+strconv.Itoa(k)+"].system[0]"]
				if !ok {
					break
				}
				v := e.f["identifier["+strconv.Itoa(k)+"].value[0]"]
				switch sys {
				case sysSOR:
					o.SOR = v
				case sysGLN, sysGLNOld:
					o.GLN = v
				}
			}
			break
		}
		return o
	}
	m.Sender = org(h["sender[0].reference[0]"])
	if m.Sender.SOR == "" {
		m.Sender.SOR, _ = strings.CutPrefix(h["source[0].endpoint[0]"], sorEndpoint)
	}
	// The primary destination, else the first (as parse reads it).
	d := "destination[0]."
	for j := 0; d == "destination[0]." && j < 16; j++ {
		p := "destination[" + strconv.Itoa(j) + "]."
		for k := 0; k < 8; k++ {
			x := p + "extension[" + strconv.Itoa(k) + "]."
			if h[x+"url[0]"] == extDestUse && h[x+"valueCoding[0].code[0]"] == "primary" {
				d = p
				break
			}
		}
	}
	m.Receiver = org(h[d+"receiver[0].reference[0]"])
	if sor, ok := strings.CutPrefix(h[d+"endpoint[0]"], sorEndpoint); ok && m.Receiver.SOR == "" {
		m.Receiver.SOR = sor
	}
	return m
}

// salvageVANS is Salvage of a VANSEnvelope: its sender and receiver, and
// the message in the part of Data before the fault.
func salvageVANS(v map[string]string, data []byte, lim xmlsafe.Limits) *Message {
	info := &VANSInfo{EnvelopeID: v["EnvelopeIdentifier[0]"], FromVANS: v["SenderID[0]"], ToVANS: v["ReceiverID[0]"]}
	for k := 0; ; k++ {
		p := "Message[0].MetaInformation[0].Transport[0].ServiceTag[" + strconv.Itoa(k) + "]"
		name, ok := v[p+".name[0]"]
		if !ok {
			break
		}
		if name == "MCM:MIME" {
			info.MIME = v[p]
		}
	}
	if info.EnvelopeID == "" || len(data) == 0 {
		return nil
	}
	// Data's base64, white space dropped, up to the last whole quantum.
	b64 := make([]byte, 0, min(len(data), maxSalvagedMessage*4/3+4))
	for _, c := range data {
		if len(b64) == cap(b64) {
			break
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			b64 = append(b64, c)
		}
	}
	b64 = b64[:len(b64)/4*4]
	msg := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(msg, b64)
	if err != nil {
		if ce, ok := err.(base64.CorruptInputError); ok {
			// Decode up to the fault only.
			good := int(ce) / 4 * 4
			n, err = base64.StdEncoding.Decode(msg, b64[:good])
		}
		if err != nil {
			return nil
		}
	}
	m := salvage(msg[:n], lim, 1)
	if m == nil {
		return nil
	}
	switch {
	case info.MIME == MIMEXML && m.Encoding != EncodingXML, info.MIME == MIMEJSON && m.Encoding != EncodingJSON:
		return nil
	}
	m.VANS = info
	// The envelope's numbers stand in for the Organizations the message
	// had no room to show before the fault: VANS delivers by them.
	if m.Sender.GLN == "" {
		m.Sender.GLN = info.FromVANS
	}
	if m.Receiver.GLN == "" {
		m.Receiver.GLN = info.ToVANS
	}
	return m
}
