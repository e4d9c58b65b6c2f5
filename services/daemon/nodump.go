package daemon

import "syscall"

// prSetDumpable is PR_SET_DUMPABLE of prctl(2).
const prSetDumpable = 4

// noCoreDumps keeps a daemon's memory, which holds keys, out of core files
// and away from ptrace by other processes of the same user: RLIMIT_CORE 0
// and PR_SET_DUMPABLE 0 (issue 14, low). It runs before the daemon holds
// any secret.
func noCoreDumps() error {
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return err
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); e != 0 {
		return e
	}
	return nil
}
