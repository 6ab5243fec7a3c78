package githubemu_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

func do(t *testing.T, emu *githubemu.Server, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, emu.URL()+strings.TrimPrefix(path, "/"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func newEmu(t *testing.T) *githubemu.Server {
	emu := githubemu.New("acme", "shop")
	t.Cleanup(emu.Close)
	emu.AddToken("tok", "bot")
	return emu
}

func TestPaginationAndETag(t *testing.T) {
	emu := newEmu(t)
	for range 45 {
		emu.Open(githubemu.PR{HeadRef: "b"})
	}
	resp, body := do(t, emu, "GET", "/repos/acme/shop/pulls", "")
	var prs []map[string]any
	if err := json.Unmarshal([]byte(body), &prs); err != nil || len(prs) != githubemu.DefaultPerPage {
		t.Fatalf("%v %d", err, len(prs))
	}
	link := resp.Header.Get("Link")
	if !strings.Contains(link, `page=2&per_page=30>; rel="next"`) || !strings.Contains(link, `rel="last"`) {
		t.Fatalf("link %q", link)
	}
	_, body = do(t, emu, "GET", "/api/v3/repos/acme/shop/pulls?page=2", "")
	if err := json.Unmarshal([]byte(body), &prs); err != nil || len(prs) != 15 {
		t.Fatalf("%v %d", err, len(prs))
	}
	etag := resp.Header.Get("ETag")
	left := emu.Remaining()
	r304, body := do(t, emu, "GET", "/repos/acme/shop/pulls", "", "If-None-Match", etag)
	if r304.StatusCode != 304 || body != "" || emu.Remaining() != left ||
		r304.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(left) {
		t.Fatalf("304: %d %q remaining %d", r304.StatusCode, body, emu.Remaining())
	}
}

func TestLimits(t *testing.T) {
	emu := newEmu(t)
	n := emu.Open(githubemu.PR{HeadRef: "b"})
	long, _ := json.Marshal(map[string]string{"body": strings.Repeat("x", githubemu.CommentLimit+1)})
	resp, body := do(t, emu, "POST", fmt.Sprintf("/repos/acme/shop/issues/%d/comments", n), string(long))
	if resp.StatusCode != 422 || !strings.Contains(body, "body is too long (maximum is 65536 characters)") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	exact, _ := json.Marshal(map[string]string{"body": strings.Repeat("é", githubemu.CommentLimit)})
	if resp, body := do(t, emu, "POST", fmt.Sprintf("/repos/acme/shop/issues/%d/comments", n), string(exact)); resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	sha := strings.Repeat("a", 40)
	for i := range githubemu.StatusesPerContext {
		if resp, body := do(t, emu, "POST", "/repos/acme/shop/statuses/"+sha, `{"state":"pending","context":"c"}`); resp.StatusCode != 201 {
			t.Fatalf("%d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body = do(t, emu, "POST", "/repos/acme/shop/statuses/"+sha, `{"state":"pending","context":"c"}`)
	if resp.StatusCode != 422 || !strings.Contains(body, "maximum number of statuses") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, emu, "POST", "/repos/acme/shop/statuses/"+sha, `{"state":"running","context":"d"}`)
	if resp.StatusCode != 422 {
		t.Fatalf("unknown state: %d", resp.StatusCode)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	emu := newEmu(t)
	emu.Inject(githubemu.Fault{Kind: githubemu.FaultSecondary, Match: "/pulls"})
	resp, body := do(t, emu, "GET", "/repos/acme/shop/pulls", "")
	if resp.StatusCode != 403 || resp.Header.Get("Retry-After") != "60" || !strings.Contains(body, "secondary-rate-limits") {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, _ := do(t, emu, "GET", "/repos/acme/shop/pulls", ""); resp.StatusCode != 200 {
		t.Fatalf("the fault did not end: %d", resp.StatusCode)
	}
	emu.ExpireToken("tok")
	if resp, body := do(t, emu, "GET", "/user", ""); resp.StatusCode != 401 || !strings.Contains(body, "Bad credentials") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if all, counted := emu.Requests(); all != 3 || counted != 1 {
		t.Fatalf("requests %d counted %d", all, counted)
	}
}
