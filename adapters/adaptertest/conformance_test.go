//go:build !release

package adaptertest_test

import (
	"testing"

	"github.com/samhub/samhub/adapters/adaptertest"
	_ "github.com/samhub/samhub/internal/plugins" // every adapter type and its harness
)

// TestConformance runs the suite for every registered adapter type; a type
// whose package registered no harness fails here.
func TestConformance(t *testing.T) { adaptertest.Conformance(t) }
