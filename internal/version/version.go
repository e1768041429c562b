// Package version carries the build's version, set by the linker.
package version

// Version is set with -ldflags "-X github.com/samhub/samhub/internal/version.Version=…".
var Version = "dev"
