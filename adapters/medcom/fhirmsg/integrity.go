package fhirmsg

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
)

// checkAttachment holds an Attachment's declared size and hash to its data
// (FHIR R4: size is an unsignedInt, the number of bytes of data before
// base64; hash is the base64 SHA-1 of the data). A declaration that
// contradicts the content is refused, not believed (issue 19: a declared
// 5 GB with small content was accepted). Without data (a reply's earlier
// attachment, or a url) the declarations describe content not sent and are
// only checked for form.
// contentFacts is what checkAttachment needs of the data: its length and
// SHA-1, computed by the reader that decoded it.
type contentFacts struct {
	size int64
	sha1 []byte
}

func checkAttachment(path string, a *node, data *contentFacts) []error {
	var errs []error
	if n := a.first("size"); n != nil {
		size, err := strconv.ParseUint(n.val, 10, 64)
		switch {
		case err != nil || size > 2147483647:
			errs = append(errs, ferr(path+".size", "must be an unsignedInt (0 to 2147483647): the number of bytes of the attachment").coded(IssueDatatype))
		case data != nil && size != uint64(data.size):
			errs = append(errs, ferr(path+".size", "declares %d bytes, but data holds %d", size, data.size).coded(IssueDamaged))
		}
	}
	if n := a.first("hash"); n != nil {
		sum, err := base64.StdEncoding.DecodeString(n.val)
		switch {
		case err != nil || len(sum) != sha1.Size:
			errs = append(errs, ferr(path+".hash", "must be the base64 SHA-1 of the attachment (20 bytes)").coded(IssueDatatype))
		case data != nil && !bytes.Equal(data.sha1, sum):
			errs = append(errs, ferr(path+".hash", "does not match the SHA-1 of data").coded(IssueDamaged))
		}
	}
	return errs
}
