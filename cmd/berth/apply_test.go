package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// berthCmd runs the berth binary and returns its stdout, stderr and exit status.
func berthCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = hermeticEnv(t)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// The one-shot commands against the Docker engine: plan shows the steps, apply carries them out, plan is then
// empty, destroy removes everything, and the detailed exit codes say which happened.
func TestApplyPlanDestroyCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	eng := newEngine(t)
	instance := fmt.Sprintf("cli%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })
	repo := newGitRepo(t)
	spec := repoSpec{worker: true}
	repo.write(map[string]string{"berth.cue": spec.cue()})
	dir := repo.dir

	out, errOut, code := berthCmd(t, "plan", dir, "--instance", instance, "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "+ create worker on local") || !strings.Contains(out, "Plan: 1 to create, 0 to update, 0 to delete, 0 to migrate.") {
		t.Fatalf("plan before apply: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = berthCmd(t, "apply", dir, "--instance", instance)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if n, _ := eng.running(instance, "worker", ""); n != 1 {
		t.Fatalf("after apply %d worker containers run, want 1", n)
	}
	if out, errOut, code = berthCmd(t, "plan", dir, "--instance", instance, "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply: exit %d, want 0 (no changes)\n%s%s", code, out, errOut)
	}

	// Removing the only workload is a prune of everything: refused by apply, exit 1, nothing deleted.
	none := spec
	none.worker = false
	repo.write(map[string]string{"berth.cue": none.cue()})
	if out, errOut, code = berthCmd(t, "apply", dir, "--instance", instance); code != 1 || !strings.Contains(errOut, "prune refused") {
		t.Fatalf("apply of an empty environment: exit %d, want 1 with a refusal\n%s%s", code, out, errOut)
	}
	if n, _ := eng.running(instance, "worker", ""); n != 1 {
		t.Fatalf("a refused apply deleted the worker")
	}

	repo.write(map[string]string{"berth.cue": spec.cue()})
	if out, errOut, code = berthCmd(t, "destroy", "--env", "production", dir, "--instance", instance); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	if cs := eng.containers(instance, ""); len(cs) != 0 {
		t.Fatalf("after destroy %d containers are left", len(cs))
	}
}
