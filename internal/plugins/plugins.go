// Package plugins links every adapter type into the binary: importing an
// adapter package registers its types with the adapters registry.
package plugins

import ()
