// Package plugins links every adapter type into the binary: importing an
// adapter package registers its types (adapters.Register*) and its
// conformance harness (adaptertest.Register). This is the one place the
// adapters are listed: a new adapter package is added here, one line, and
// from then on the hub can build it, `samhub config check` and the schema
// know its keys, and adapters/adaptertest runs it through the suite.
package plugins

import (
	_ "github.com/samhub/samhub/adapters/casesys"     // casesys
	_ "github.com/samhub/samhub/adapters/digitalpost" // digitalpost
	_ "github.com/samhub/samhub/adapters/email"       // smtp, imap
	_ "github.com/samhub/samhub/adapters/epj"         // epj
	_ "github.com/samhub/samhub/adapters/medcom"      // medcom
)
