package oioxml

import (
	"strings"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// Salvage reads head, the part of an Emessage before the fault that made
// it unreadable as XML (xmlsafe.Error.Offset), for what a negative receipt
// needs: the envelope's id and, of each letter whose head was read whole
// before the fault, its id and version and its sender's and receiver's
// EAN numbers (xmlsafe.HeadXML; nothing else is kept, no patient, no
// text). It returns nil when no letter can be answered from it: the
// envelope's id or every letter's id, sender or receiver was not read, or
// the file holds receipts, which are never answered.
func Salvage(head []byte, lim xmlsafe.Limits) *Emessage {
	m := &Emessage{Charset: declaredCharset(head)}
	heads := map[string]*ClinicalEmail{} // by the letter element's path
	var order []string
	receipt := false
	xmlsafe.HeadXML(head, lim, xmlsafe.HeadOptions{
		Keep: func(path string) bool {
			p := strings.Split(path, ".")
			if len(p) < 2 || !strings.HasPrefix(p[0], "Emessage[") {
				return false
			}
			if len(p) == 3 && p[1] == "Envelope[0]" && p[2] == "Identifier[0]" {
				return true
			}
			if len(p) != 4 {
				return false
			}
			switch p[2] + "." + p[3] {
			case "Letter[0].Identifier[0]", "Letter[0].VersionCode[0]", "Sender[0].EANIdentifier[0]", "Receiver[0].EANIdentifier[0]":
				return true
			}
			return false
		},
		Leaf: func(path, v string) {
			p := strings.Split(path, ".")
			if len(p) == 3 {
				m.Envelope.Identifier = v
				return
			}
			el := p[1][:strings.IndexByte(p[1], '[')]
			if el == "Envelope" || el == "Local_Elements" {
				return
			}
			if strings.HasSuffix(el, "Receipt") {
				receipt = true
				return
			}
			ce := heads[p[1]]
			if ce == nil {
				ce = &ClinicalEmail{}
				heads[p[1]] = ce
				order = append(order, p[1])
			}
			switch p[2] + "." + p[3] {
			case "Letter[0].Identifier[0]":
				ce.Identifier = v
			case "Letter[0].VersionCode[0]":
				ce.VersionCode = v
			case "Sender[0].EANIdentifier[0]":
				ce.Sender.EAN = v
			case "Receiver[0].EANIdentifier[0]":
				ce.Receiver.EAN = v
			}
		},
	})
	if receipt || m.Envelope.Identifier == "" {
		return nil
	}
	for _, k := range order {
		if ce := heads[k]; ce.Identifier != "" && ce.Sender.EAN != "" && ce.Receiver.EAN != "" {
			ce.Index = len(m.Unread) + 1
			m.Unread = append(m.Unread, ce)
		}
	}
	if len(m.Unread) == 0 {
		return nil
	}
	return m
}
