// Package devbuild holds checks of the Makefile's development targets: every
// command that builds the BigQuery emulator passes the same C, C++ and Go
// flags, so its code (go-zetasql's C++ above all) compiles once per machine;
// the Go packages built without inlining are the emulator's alone, none of
// the job's; and the release build passes none of these flags. It has no
// code of its own.
package devbuild
