// Package archtest holds tests of the module's shape: which packages may
// import which (issue 20, "parts you can name"). It has no code of its own.
package archtest
