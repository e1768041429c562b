package hubtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
)

// MedComBombs names the hostile MedCom inputs MedComBomb builds: markup and
// value bombs of every kind the parsers read, and letters that are valid
// enough to have their attachment decoded before they are refused.
var MedComBombs = []string{
	"xml-flat", "xml-flat-fhir", "xml-deep", "xml-attrs", "xml-attribute", "xml-text", "xml-comment", "xml-cdata", "xml-entities",
	"json-flat", "json-string", "json-escapes", "json-deep",
	"fhir-xml-attachment", "fhir-json-attachment", "vans-attachment", "fhir-declared-size",
	"xbin01-text", "xbin01-attachment",
}

const (
	oioNS     = "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/"
	oioNS2005 = "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2005/08/07/" // XBIN01
)

// MedComBomb builds the input kind of about size bytes (never more) that
// the hub must refuse. Letters carry only MedCom's fictitious test persons.
func MedComBomb(kind string, size int) ([]byte, error) {
	fill := func(prefix, unit, suffix string) []byte {
		n := max(0, (size-len(prefix)-len(suffix))/len(unit))
		return []byte(prefix + strings.Repeat(unit, n) + suffix)
	}
	switch kind {
	case "xml-flat":
		return fill(`<Emessage xmlns="`+oioNS+`">`, "<a/>", "</Emessage>"), nil
	case "xml-flat-fhir":
		return fill(`<Bundle xmlns="http://hl7.org/fhir">`, `<id value="x"/>`, "</Bundle>"), nil
	case "xml-deep":
		return fill("", "<a>", ""), nil
	case "xml-attrs":
		var b strings.Builder
		b.WriteString(`<Bundle xmlns="http://hl7.org/fhir"`)
		for i := 0; b.Len() < size-20; i++ {
			fmt.Fprintf(&b, ` a%d="1"`, i)
		}
		b.WriteString("/>")
		return []byte(b.String()), nil
	case "xml-attribute":
		return fill(`<Bundle xmlns="http://hl7.org/fhir"><id value="`, "A", `"/></Bundle>`), nil
	case "xml-text":
		return fill(`<Emessage xmlns="`+oioNS+`"><Envelope>`, "x", "</Envelope></Emessage>"), nil
	case "xml-comment":
		return fill(`<Bundle xmlns="http://hl7.org/fhir"><!--`, "x", "--></Bundle>"), nil
	case "xml-cdata":
		return fill(`<Bundle xmlns="http://hl7.org/fhir"><id><![CDATA[`, "x", "]]></id></Bundle>"), nil
	case "xml-entities":
		return fill(`<Bundle xmlns="http://hl7.org/fhir"><id value="`, "&amp;", `"/></Bundle>`), nil
	case "json-flat":
		return fill(`{"resourceType":"Bundle","entry":[`, "{},", "{}]}"), nil
	case "json-string":
		return fill(`{"resourceType":"Bundle","id":"`, "A", `"}`), nil
	case "json-escapes":
		return fill(`{"resourceType":"Bundle","id":"`, `\u00e6`, `"}`), nil
	case "json-deep":
		return fill(`{"resourceType":"Bundle","x":`, "[", ""), nil
	case "fhir-xml-attachment", "fhir-json-attachment", "vans-attachment":
		return attachmentLetter(kind, size)
	case "xbin01-text":
		// A BinaryLetter lifts the 1 MiB cap on one text run of OIOXML.
		return fill(`<Emessage xmlns="`+oioNS2005+`"><Envelope/><BinaryLetter><Letter>`, "x", "</Letter></BinaryLetter></Emessage>"), nil
	case "xbin01-attachment":
		return binaryLetter(size)
	case "fhir-declared-size":
		data, err := fixture("testdata/medcom/fhir/Bundle-c0426e3e-978f-46e8-a366-a30f27854b0a.xml")
		if err != nil {
			return nil, err
		}
		// A 5 GB attachment declared, a small one sent.
		return bytes.Replace(data, []byte(`<contentType value="application/pdf"/>`), []byte(`<contentType value="application/pdf"/><size value="5000000000"/>`), 1), nil
	}
	return nil, fmt.Errorf("unknown MedCom bomb %q (known: %s)", kind, strings.Join(MedComBombs, ", "))
}

// attachmentLetter is a CareCommunication whose PDF attachment fills it to
// about size bytes and whose Bundle.timestamp has no time zone: it is read
// in full, its attachment decoded, and then refused.
func attachmentLetter(kind string, size int) ([]byte, error) {
	file, open, end := "Bundle-c0426e3e-978f-46e8-a366-a30f27854b0a.xml", `<data value="`, `"/>`
	stamp, bad := `<timestamp value="2024-05-04T10:00:00+02:00"/>`, `<timestamp value="2024-05-04T10:00:00"/>`
	if kind == "fhir-json-attachment" {
		file, open, end = "Bundle-b56549f7-ed10-422d-8088-f7222b686e46.json", `"data" : "`, `"`
		stamp, bad = `"timestamp" : "2024-05-02T11:30:00+02:00"`, `"timestamp" : "2024-05-02T11:30:00"`
	}
	data, err := fixture("testdata/medcom/fhir/" + file)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(data, []byte(open))
	if i < 0 {
		return nil, errors.New("fixture has no attachment")
	}
	i += len(open)
	j := bytes.Index(data[i:], []byte(end))
	room := size - (len(data) - j)
	if kind == "vans-attachment" {
		room = room*3/4 - 2048 // the envelope carries the letter base64
	}
	room = max(4, room/4*4)
	pdf := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("%PDF-1.7 fictitious "), room/4*3/20+1))[:room]
	out := append(append(append([]byte(nil), data[:i]...), pdf...), data[i+j:]...)
	out = bytes.Replace(out, []byte(stamp), []byte(bad), 1)
	if kind != "vans-attachment" {
		return out, nil
	}
	return fhirmsg.BuildVANSEnvelope(out, fhirmsg.Envelope{EnvelopeID: "0b6f1a1e-3c7d-4f51-9d1e-6f8a2c4b5d10", MessageID: "4c1d2e3f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
		FromGLN: "5790000121526", ToGLN: "5790001382445", Encoding: fhirmsg.EncodingXML, Name: "MCM:FDIS91#other", Version: "5.0", Now: time.Date(2026, 3, 4, 9, 15, 0, 0, time.UTC)})
}

// binaryLetter is an XBIN01 letter whose object, base64 in lines as MedCom
// writes it, fills it to about size bytes and whose child has an
// impossible CPR number: it is read in full, its object decoded, and then
// refused.
func binaryLetter(size int) ([]byte, error) {
	data, err := fixture("testdata/medcom/samhub/xbin01.xml")
	if err != nil {
		return nil, err
	}
	open, end := []byte("<Object_Base64Encoded>"), []byte("</Object_Base64Encoded>")
	i, j := bytes.Index(data, open)+len(open), bytes.Index(data, end)
	if i < len(open) || j < i {
		return nil, errors.New("fixture has no object")
	}
	const line, sep = 76, "\n        "
	room := max(line, (size-(len(data)-(j-i)))/(line+len(sep))*line)
	b64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("%PDF-1.7 fictitious "), room/4*3/20+1))[:room/4*4]
	var obj bytes.Buffer
	for len(b64) > 0 {
		n := min(line, len(b64))
		obj.WriteString(b64[:n])
		if b64 = b64[n:]; len(b64) > 0 {
			obj.WriteString(sep)
		}
	}
	out := append(append(append([]byte(nil), data[:i]...), obj.Bytes()...), data[j:]...)
	out = bytes.Replace(out, []byte("<OriginalObjectSize>402<"), fmt.Appendf(nil, "<OriginalObjectSize>%d<", room/4*3), 1)
	return bytes.Replace(out, []byte("<CivilRegistrationNumber>2509479989"), []byte("<CivilRegistrationNumber>3102479989"), 1), nil
}

// fixture reads a file of the repository, wherever the test runs.
func fixture(rel string) ([]byte, error) {
	_, here, _, _ := runtime.Caller(0)
	return os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", rel))
}

// ValidateRun is what `samhub validate --stats FILE` did, run as a child
// process.
type ValidateRun struct {
	PeakRSS int64         // bytes: the child's peak resident memory (its own VmHWM, Linux; 0 elsewhere)
	Check   time.Duration // the check of the file itself, without the process start
	Wall    time.Duration // from start to exit
	Exit    int           // 0 valid, 1 refused
	Output  string        // what validate printed on stdout
}

var statsLine = regexp.MustCompile(`stats: file=.* check_us=(\d+) peak_rss_bytes=(\d+)`)

// MeasureValidate runs `bin validate --stats file` and reads the time of
// the check and the child's peak memory from what it reports: what one
// input costs the hub's parsers, with nothing else in the process (the
// reliability suite's hostile scenario asserts on it). The child's own peak
// is used because the kernel's ru_maxrss of a child started by vfork (as
// os/exec does) is at least the parent's peak.
func MeasureValidate(bin, file string) (ValidateRun, error) {
	cmd := exec.Command(bin, "validate", "--stats", file)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	run := ValidateRun{Wall: time.Since(start), Output: out.String()}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return run, err
	}
	run.Exit = cmd.ProcessState.ExitCode()
	m := statsLine.FindStringSubmatch(errOut.String())
	if m == nil {
		return run, fmt.Errorf("validate printed no stats line: %s", errOut.String())
	}
	us, _ := strconv.ParseInt(m[1], 10, 64)
	run.Check = time.Duration(us) * time.Microsecond
	run.PeakRSS, _ = strconv.ParseInt(m[2], 10, 64)
	return run, nil
}
