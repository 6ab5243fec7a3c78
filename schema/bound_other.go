//go:build !linux

package schema

import "syscall"

// evalProcAttr: outside Linux the child keeps berth's process group and has no parent-death signal; the time
// limit and the context still end it. The memory budget is read from /proc, so it holds on Linux only.
func evalProcAttr() *syscall.SysProcAttr { return nil }

func limitAddressSpace(uint64) {}
