package wsroute_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goCommand returns the go command that runs these tests, skipping the test
// on a user's machine without one (never in CI).
func goCommand(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("go command not found: %v", err)
		}
		t.Skipf("the go command is not on PATH: %v", err)
	}
	return goBin
}

func runGo(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCommand(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// workspaceModules lists the folders of the modules that go.work uses.
func workspaceModules(t *testing.T) []string {
	t.Helper()
	out, err := runGo(t, ".", nil, "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		t.Fatalf("go list -m: %v\n%s", err, out)
	}
	dirs := strings.Fields(out)
	if len(dirs) < 2 {
		t.Fatalf("go list -m found %d modules, want the root and the e2e modules:\n%s", len(dirs), out)
	}
	return dirs
}

// Every module is tidy on its own, outside the workspace, as a user who
// requires it sees it: `go mod tidy` would change nothing. .ci/run checks the
// same; this test makes `go test` catch it too.
func TestModulesTidy(t *testing.T) {
	for _, dir := range workspaceModules(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, err := runGo(t, dir, []string{"GOWORK=off"}, "mod", "tidy", "-diff")
			if err != nil || strings.Contains(out, "diff ") {
				t.Errorf("module in %s is not tidy (GOWORK=off go mod tidy -diff): %v\n%s", dir, err, out)
			}
		})
	}
}

// `go doc` in the repository must not change any tracked file: go.work.sum
// must already hold every checksum the workspace needs.
func TestGoDocLeavesTreeClean(t *testing.T) {
	files := []string{"go.work.sum"}
	for _, dir := range workspaceModules(t) {
		files = append(files, filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"))
	}
	before := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		before[f] = b
	}
	out, err := runGo(t, ".", nil, "doc", "github.com/wsroute/wsroute")
	if err != nil {
		t.Fatalf("go doc: %v\n%s", err, out)
	}
	for _, f := range files {
		after, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if !bytes.Equal(before[f], after) {
			// Put the file back: a test must not leave the tree dirty either.
			if before[f] != nil {
				_ = os.WriteFile(f, before[f], 0o644)
			}
			t.Errorf("go doc changed %s; commit what it adds (run go doc, then git add)", f)
		}
	}
}

// Every package has a package comment, so that `go doc` opens on what it is.
func TestEveryPackageDocumented(t *testing.T) {
	var patterns []string
	for _, dir := range workspaceModules(t) {
		patterns = append(patterns, dir+"/...")
	}
	out, err := runGo(t, ".", nil, append([]string{"list", "-f", "{{.ImportPath}}|{{.Name}}|{{.Doc}}"}, patterns...)...)
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for line := range strings.Lines(out) {
		f := strings.SplitN(strings.TrimSpace(line), "|", 3)
		if len(f) != 3 {
			continue
		}
		if f[2] == "" {
			t.Errorf("package %s has no package comment", f[0])
		}
	}
}
