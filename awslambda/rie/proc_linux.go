package rie

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the emulator in a process group of its own, so that
// Close also kills the function it started, and has the kernel kill the
// emulator if this process dies first.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
