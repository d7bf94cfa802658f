package cli

import "syscall"

// childAttr makes the kernel send the job's process SIGTERM when the
// thread that started it (Supervise keeps it locked to its goroutine)
// ends, also by SIGKILL: the job then drains and stops producing.
// WatchParent covers a parent that died before this took effect.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
