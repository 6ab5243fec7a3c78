package forge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/repos/forge"
)

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestObserveTransport(t *testing.T) {
	var got []string
	obs := forge.ObserverFuncs{
		OnRequest:   func(kind, op string, code int) { got = append(got, fmt.Sprintf("%s %s %d", kind, op, code)) },
		OnRateLimit: func(kind string, n int) { got = append(got, fmt.Sprintf("%s remaining %d", kind, n)) },
	}
	remaining := []string{"17", "", "x", "-1", " 3 "}
	i := 0
	next := roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/down" {
			return nil, errors.New("connection refused")
		}
		w := httptest.NewRecorder()
		w.Header().Set("RateLimit-Remaining", remaining[i%len(remaining)])
		i++
		w.WriteHeader(http.StatusNotModified)
		return w.Result(), nil
	})
	rt := forge.ObserveTransport(next, "gitlab", obs, "RateLimit-Remaining")
	for range remaining {
		req, _ := http.NewRequestWithContext(forge.WithOp(context.Background(), forge.OpListOpen), "GET", "http://h/x", nil)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("GET", "http://h/down", nil)
	if _, err := rt.RoundTrip(req); err == nil {
		t.Fatal("no error")
	}
	want := "gitlab list_open 304,gitlab remaining 17,gitlab list_open 304,gitlab list_open 304,gitlab list_open 304," +
		"gitlab list_open 304,gitlab remaining 3,gitlab other 0"
	if strings.Join(got, ",") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, ","), want)
	}
	// Without an observer the transport is next itself; without a header name nothing is read.
	if forge.ObserveTransport(next, "x", nil, "H") == nil || forge.ObserveTransport(nil, "x", nil, "") != http.DefaultTransport {
		t.Fatal("nil observer")
	}
	if forge.OpOf(context.Background()) != forge.OpOther {
		t.Fatal("default op")
	}
}
