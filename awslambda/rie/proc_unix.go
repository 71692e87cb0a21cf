//go:build unix

package rie

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the emulator in a process group of its own, so that
// Close also kills the function it started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
