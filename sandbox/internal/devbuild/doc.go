// Package devbuild holds checks of the Makefile's development targets: every
// command that builds the BigQuery emulator passes the same C and C++ flags,
// so its C++ (go-zetasql) compiles once per machine, and the release build
// passes none of them. It has no code of its own.
package devbuild
