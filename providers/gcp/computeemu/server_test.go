package computeemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func do(t *testing.T, method, u, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

const tmplBody = `{"name":"%s","properties":{"machineType":"e2-small","disks":[{"boot":true,"initializeParams":{"sourceImage":"x"}}],"networkInterfaces":[{"network":"global/networks/default"}]}}`

// TestRollingUpdate drives a group through the wire API and steps: it converges to targetSize, and a version change
// surges before removing an old instance, never going below targetSize RUNNING.
func TestRollingUpdate(t *testing.T) {
	low := 1 << 30
	watch := false
	s := New(Options{AllowAnonymous: true, OnStep: func(_ string, running, _ int) {
		if watch {
			low = min(low, running)
		}
	}})
	defer s.Close()
	base := fmt.Sprintf("%s/compute/v1/projects/%s", s.URL(), s.Project())
	for _, n := range []string{"t1", "t2"} {
		if c, v := do(t, "POST", base+"/global/instanceTemplates", fmt.Sprintf(tmplBody, n)); c != 200 {
			t.Fatalf("insert %s: %d %v", n, c, v)
		}
	}
	s.Step(3)
	groups := base + "/regions/" + s.Region() + "/instanceGroupManagers"
	body := `{"name":"g","baseInstanceName":"g","targetSize":2,"versions":[{"instanceTemplate":"global/instanceTemplates/t1"}],
		"updatePolicy":{"type":"PROACTIVE","maxSurge":{"fixed":3},"maxUnavailable":{"fixed":0}}}`
	if c, v := do(t, "POST", groups, body); c != 200 || v["status"] != "RUNNING" {
		t.Fatalf("insert group: %d %v", c, v)
	}
	s.Step(10)
	if c, v := do(t, "GET", groups+"/g", ""); c != 200 || v["status"].(map[string]any)["isStable"] != true {
		t.Fatalf("group not stable after 10 steps: %v", v)
	}
	s.mu.Lock() // OnStep runs under the server's lock
	watch = true
	s.mu.Unlock()
	if c, v := do(t, "PATCH", groups+"/g", `{"versions":[{"instanceTemplate":"global/instanceTemplates/t2"}]}`); c != 200 {
		t.Fatalf("patch: %d %v", c, v)
	}
	s.Step(20)
	_, v := do(t, "POST", groups+"/g/listManagedInstances", "")
	mis := v["managedInstances"].([]any)
	if len(mis) != 2 {
		t.Fatalf("%d instances after the update, want 2: %v", len(mis), v)
	}
	for _, mi := range mis {
		m := mi.(map[string]any)
		if !strings.HasSuffix(m["version"].(map[string]any)["instanceTemplate"].(string), "/t2") || m["instanceStatus"] != "RUNNING" {
			t.Errorf("instance not updated: %v", m)
		}
	}
	s.mu.Lock()
	lowest := low
	s.mu.Unlock()
	if lowest < 2 {
		t.Errorf("RUNNING instances fell to %d during the update", lowest)
	}
	c, v := do(t, "DELETE", base+"/global/instanceTemplates/t2", "")
	if c != 400 || !strings.Contains(fmt.Sprint(v), "resourceInUseByAnotherResource") {
		t.Errorf("deleting a template in use: %d %v", c, v)
	}
}

// TestErrorsAndAuth checks the Google error format of faults and validation, and the token endpoint.
func TestErrorsAndAuth(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	base := fmt.Sprintf("%s/compute/v1/projects/%s", s.URL(), s.Project())
	if c, v := do(t, "GET", base+"/global/instanceTemplates", ""); c != 401 {
		t.Fatalf("no token: %d %v", c, v)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"e30.e30.c2ln"}}
	resp, err := http.Post(s.URL()+"/token", "application/x-www-form-urlencoded", bytes.NewBufferString(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("a forged assertion got %d", resp.StatusCode)
	}

	s.mu.Lock()
	s.opts.AllowAnonymous = true
	s.mu.Unlock()
	s.Fail(1, FaultThrottle)
	s.Fail(1, FaultQuota)
	s.Fail(1, FaultServer)
	s.Fail(1, FaultConflict)
	for _, want := range []struct {
		code   int
		reason string
	}{{429, "rateLimitExceeded"}, {403, "rateLimitExceeded"}, {503, "backendError"}, {409, "conflict"}} {
		c, v := do(t, "GET", base+"/global/instanceTemplates", "")
		e, _ := v["error"].(map[string]any)
		errs, _ := e["errors"].([]any)
		if c != want.code || e["code"] != float64(want.code) || len(errs) != 1 || errs[0].(map[string]any)["reason"] != want.reason {
			t.Errorf("fault: %d %v, want %d %s", c, v, want.code, want.reason)
		}
	}
	if c, v := do(t, "POST", base+"/global/instanceTemplates", fmt.Sprintf(tmplBody, "Bad_Name")); c != 400 || !strings.Contains(fmt.Sprint(v), "resource.name") {
		t.Errorf("invalid name: %d %v", c, v)
	}
	if c, v := do(t, "POST", base+"/global/instanceTemplates", `{"name":"x","bogus":1}`); c != 400 {
		t.Errorf("unknown field: %d %v", c, v)
	}
}
