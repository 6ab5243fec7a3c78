package giteaemu

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, s *Server, path, tok string, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "token "+tok)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestPagingETagQuota(t *testing.T) {
	s := New("o", "r", "bot", "tk")
	defer s.Close()
	for range 75 {
		s.Open(PR{Title: "t", Author: "a", HeadRef: "h", HeadSHA: "s"})
	}
	resp, b := get(t, s, "/api/v1/repos/o/r/pulls?state=open&limit=100&page=1", "tk", nil)
	var items []map[string]any
	if err := json.Unmarshal(b, &items); err != nil || len(items) != MaxLimit {
		t.Fatalf("%d items, %v", len(items), err)
	}
	if resp.Header.Get("X-Total-Count") != "75" || !strings.Contains(resp.Header.Get("Link"), `page=2`) ||
		!strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Fatalf("headers %v", resp.Header)
	}
	etag, left := resp.Header.Get("ETag"), s.Remaining()
	resp, _ = get(t, s, "/api/v1/repos/o/r/pulls?state=open&limit=100&page=1", "tk", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 304 || s.Remaining() != left || resp.Header.Get("X-RateLimit-Remaining") == "" {
		t.Fatalf("304: %d, remaining %d→%d", resp.StatusCode, left, s.Remaining())
	}
	resp, _ = get(t, s, "/api/v1/repos/o/r/pulls?state=open&limit=50&page=2", "tk", nil)
	if strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Fatalf("last page has next: %s", resp.Header.Get("Link"))
	}
	if resp, _ := get(t, s, "/api/v1/repos/o/r/pulls", "", nil); resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	s.Fail("/pulls", FaultTruncated, 1)
	_, b = get(t, s, "/api/v1/repos/o/r/pulls", "tk", nil)
	if json.Valid(b) {
		t.Fatal("truncated page is valid JSON")
	}
	if s.Requests("GET /pulls") != 5 {
		t.Fatalf("requests %d", s.Requests("GET /pulls"))
	}
}

func TestCommentLimit(t *testing.T) {
	s := New("o", "r", "bot", "tk")
	defer s.Close()
	n := s.Open(PR{Title: "t", Author: "a"})
	s.SetCommentLimit(5)
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/repos/o/r/issues/1/comments", strings.NewReader(`{"body":"ünïcø"}`))
	req.Header.Set("Authorization", "token tk")
	resp, err := s.Client().Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("5 characters: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", s.URL+"/api/v1/repos/o/r/issues/1/comments", strings.NewReader(`{"body":"123456"}`))
	req.Header.Set("Authorization", "token tk")
	resp, err = s.Client().Do(req)
	if err != nil || resp.StatusCode != 422 {
		t.Fatalf("6 characters: %v %v", resp, err)
	}
	resp.Body.Close()
	if len(s.Comments(n)) != 1 {
		t.Fatal(s.Comments(n))
	}
}
