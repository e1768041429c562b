// Package plugins links every adapter type into the binary: importing an
// adapter package registers its types with the adapters registry.
package plugins

import (
	_ "github.com/samhub/samhub/adapters/casesys" // casesys
	_ "github.com/samhub/samhub/adapters/email"   // smtp, imap
	_ "github.com/samhub/samhub/adapters/epj"     // epj
	_ "github.com/samhub/samhub/adapters/medcom"  // medcom
)
