//go:build !linux

package cli

import "syscall"

// childAttr is nil where there is no parent-death signal: WatchParent's
// polling alone notices a dead parent.
func childAttr() *syscall.SysProcAttr { return nil }
