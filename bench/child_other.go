//go:build !linux

package main

import (
	"os"
	"os/exec"
	"os/signal"
)

// dieWithParent does nothing here: the server process still exits when its
// standard input closes.
func dieWithParent(*exec.Cmd) {}

func notifyTerm(c chan<- os.Signal) { signal.Notify(c, os.Interrupt) }
