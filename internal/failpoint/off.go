//go:build !failpoints

package failpoint

import "errors"

// Compiled reports whether failpoints are compiled in.
const Compiled = false

// Kill does nothing: failpoints are not compiled in.
func Kill(string) {}

// Active is false: failpoints are not compiled in.
func Active(string) bool { return false }

// Arm fails: failpoints are not compiled in.
func Arm(string) error {
	return errors.New("failpoints are not compiled in: build with -tags failpoints")
}
