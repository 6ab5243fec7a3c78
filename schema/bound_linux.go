package schema

import "syscall"

// evalProcAttr puts the evaluation child in its own process group, so that a terminal's Ctrl-C reaches only berth
// (which ends the child itself), and has the kernel kill it if berth dies first.
func evalProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// limitAddressSpace caps the process's virtual memory: allocations above it fail, and Go exits "out of memory".
func limitAddressSpace(n uint64) {
	_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: n, Max: n})
}
