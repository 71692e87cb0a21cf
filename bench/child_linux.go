package main

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// dieWithParent makes the kernel kill the server process when the load
// generator dies, however it dies.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func notifyTerm(c chan<- os.Signal) { signal.Notify(c, syscall.SIGTERM, os.Interrupt) }
