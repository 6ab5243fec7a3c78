package gitlabemu_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/repos/forge/gitlab/gitlabemu"
)

func get(t *testing.T, url, token, inm string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Private-Token", token)
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestWireShapes(t *testing.T) {
	emu := gitlabemu.New(7, "group/app", "bot", "tok-123456789")
	defer emu.Close()
	for i := 0; i < 25; i++ {
		emu.Open(gitlabemu.MR{Title: "t", Author: "dev", SHA: "s", SourceBranch: "b", TargetBranch: "main"})
	}
	u := emu.APIURL() + "/projects/group%2Fapp/merge_requests?state=opened"
	resp, body := get(t, u, "tok-123456789", "")
	if resp.StatusCode != 200 || resp.Header.Get("X-Next-Page") != "2" || resp.Header.Get("X-Total") != "25" ||
		!strings.Contains(resp.Header.Get("Link"), `rel="next"`) || !strings.HasPrefix(body, "[") {
		t.Fatalf("page 1: %d %v", resp.StatusCode, resp.Header)
	}
	left := resp.Header.Get("RateLimit-Remaining")
	resp, body = get(t, u, "tok-123456789", resp.Header.Get("ETag"))
	if resp.StatusCode != 304 || body != "" || resp.Header.Get("RateLimit-Remaining") != left {
		t.Fatalf("conditional: %d remaining %s → %s", resp.StatusCode, left, resp.Header.Get("RateLimit-Remaining"))
	}
	resp, body = get(t, u, "wrong", "")
	if resp.StatusCode != 401 || !strings.Contains(body, "401 Unauthorized") {
		t.Fatalf("bad token: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, emu.APIURL()+"/projects/7/merge_requests/99", "tok-123456789", "")
	if resp.StatusCode != 404 {
		t.Fatalf("missing MR: %d", resp.StatusCode)
	}
	emu.SetQuota(0)
	resp, _ = get(t, u, "tok-123456789", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("quota: %d", resp.StatusCode)
	}
	if emu.Requests("merge_requests") != 5 {
		t.Fatalf("requests counted: %d", emu.Requests("merge_requests"))
	}
}

func TestStatusStateMachine(t *testing.T) {
	emu := gitlabemu.New(7, "group/app", "bot", "tok-123456789")
	defer emu.Close()
	post := func(state string) int {
		req, _ := http.NewRequest("POST", emu.APIURL()+"/projects/7/statuses/abc", strings.NewReader(`{"state":"`+state+`","name":"c"}`))
		req.Header.Set("Private-Token", "tok-123456789")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, step := range []struct {
		state string
		code  int
	}{{"success", 201}, {"pending", 201}, {"pending", 400}, {"running", 201}, {"running", 400}, {"pending", 400}, {"success", 201}, {"bogus", 400}} {
		if got := post(step.state); got != step.code {
			t.Fatalf("step %d %s: %d, want %d", i, step.state, got, step.code)
		}
	}
}
