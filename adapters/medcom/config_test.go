package medcom

import (
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// The spec's max_bytes default is MedCom's cap as xmlsafe keeps it: the
// two must not drift apart.
func TestMaxBytesDefaultIsTheXMLLimit(t *testing.T) {
	if got, want := adapters.Defaults[Config]().MaxBytes, xmlsafe.DefaultLimits().MaxBytes; got != want {
		t.Errorf("max_bytes default %d, xmlsafe.DefaultLimits().MaxBytes %d", got, want)
	}
}
