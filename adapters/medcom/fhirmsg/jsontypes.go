package fhirmsg

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// FHIR JSON writes integers and decimals as JSON numbers, booleans as true
// or false, and every other primitive as a string (FHIR R4, JSON
// representation §2.6.2). The node tree keeps only text, so "size": "402"
// and "code": 12 would read like their XML forms, which other readers
// refuse. These are the numeric and boolean elements of the resources
// MedCom's messages carry, by name; the rest must be strings. "value" is
// left alone: a string in Identifier and ContactPoint, a decimal in
// Quantity.
var (
	jsonNumbers = map[string]bool{
		"size": true, "rank": true, "total": true, "multipleBirthInteger": true,
		"valueInteger": true, "valueUnsignedInt": true, "valuePositiveInt": true, "valueDecimal": true, "valueInteger64": true,
	}
	jsonBooleans = map[string]bool{
		"active": true, "deceasedBoolean": true, "multipleBirthBoolean": true, "preferred": true, "valueBoolean": true,
	}
)

// jsonTypes lists the primitives of obj (a resource of type root) written
// with the wrong JSON type, each naming its element and never its value
// (findings go back to the sender and into logs).
func jsonTypes(root string, obj map[string]any) []error {
	var out []error
	var walk func(v any, ptr, name string)
	walk = func(v any, ptr, name string) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(v[k], ptr+"/"+k, k)
			}
		case []any:
			for i, item := range v {
				walk(item, ptr+"/"+strconv.Itoa(i), name)
			}
		case json.Number:
			if !jsonNumbers[name] && name != "value" {
				out = append(out, ferr(pointerPath(root, ptr), "must be a JSON %s, not a number", jsonKind(name)).coded(IssueDatatype))
			}
		case bool:
			if !jsonBooleans[name] {
				out = append(out, ferr(pointerPath(root, ptr), "must be a JSON %s, not true or false", jsonKind(name)).coded(IssueDatatype))
			}
		case string:
			if jsonNumbers[name] || jsonBooleans[name] {
				out = append(out, ferr(pointerPath(root, ptr), "must be a JSON %s, not a string", jsonKind(name)).coded(IssueDatatype))
			}
		}
	}
	walk(obj, "", "")
	return out
}

// jsonBare reports whether n's value is written bare in JSON: a number or
// a boolean element whose value reads as one (a segment copied from an
// XML letter carries its size as text).
func jsonBare(n *node) bool {
	switch {
	case jsonBooleans[n.name]:
		return n.val == "true" || n.val == "false"
	case jsonNumbers[n.name]:
		var v json.Number
		return json.Unmarshal([]byte(n.val), &v) == nil && n.val != "" && n.val[0] != '"'
	}
	return false
}

func jsonKind(name string) string {
	switch {
	case jsonNumbers[name]:
		return "number"
	case jsonBooleans[name]:
		return "boolean (true or false)"
	}
	return "string"
}
