package store

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/schema/redact"
)

func TestAppendListBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenWith(path, Options{Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		if err := s.AppendPlan(Plan{Time: t0, Environment: "prod", Revision: fmt.Sprint("r", i), Plan: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendPlan(Plan{Environment: "staging", Revision: "s0", Plan: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Plans("prod", 0)
	if err != nil {
		t.Fatal(err)
	}
	var revs []string
	for _, p := range ps {
		revs = append(revs, p.Revision)
	}
	if fmt.Sprint(revs) != "[r4 r3 r2]" {
		t.Errorf("prod plans = %v, want newest three", revs)
	}
	if ps, _ := s.Plans("staging", 1); len(ps) != 1 || ps[0].Revision != "s0" {
		t.Errorf("staging plans = %v", ps)
	}
	if err := s.AppendApply(Apply{Environment: "prod", Revision: "r4", Steps: []Step{{Action: "create", Workload: "web", OK: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(Event{Kind: "load-failed", Message: "x.cue:1:1: bad"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRevision(Revision{Revision: "abc"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: the history survived.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if as, _ := s.Applies("prod", 10); len(as) != 1 || !as[0].Steps[0].OK {
		t.Errorf("applies = %+v", as)
	}
	if es, _ := s.Events("", 10); len(es) != 1 || es[0].Kind != "load-failed" {
		t.Errorf("events = %+v", es)
	}
	if rs, _ := s.Revisions(10); len(rs) != 1 || rs[0].Revision != "abc" {
		t.Errorf("revisions = %+v", rs)
	}
	if ps, _ := s.Plans("prod", 2); len(ps) != 2 {
		t.Errorf("limit ignored: %d plans", len(ps))
	}
}

func TestOpenLockedFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := OpenWith(path, Options{Timeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("second open of a locked store succeeded")
	}
}

func TestOpenBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, []byte("not a bolt file, definitely not one at all, padding padding padding"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil {
		t.Fatal("opened garbage")
	}
}

// A registered secret quoted by a plan, an apply error or an event never reaches the file, in any encoding.
func TestRecordsMasked(t *testing.T) {
	const secret = "store-canary-0xFEEDFACE"
	redact.Register(secret)
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	plan, _ := json.Marshal(map[string]string{"reason": "env changed: " + secret})
	for _, err := range []error{
		s.AppendPlan(Plan{Environment: "prod", Revision: "r1", Summary: "1 update", Plan: plan}),
		s.AppendApply(Apply{Environment: "prod", Revision: "r1", Steps: []Step{{Action: "update", Error: "401: Basic " + b64}}}),
		s.AppendEvent(Event{Kind: "fetch-failed", Message: "server said " + url.QueryEscape(secret)}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if evs, err := s.Events("", 1); err != nil || len(evs) != 1 || !strings.Contains(evs[0].Message, redact.Mask) {
		t.Errorf("events: %v, %v", evs, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{secret, b64, url.QueryEscape(secret), hex.EncodeToString([]byte(secret))} {
		if bytes.Contains(raw, []byte(form)) {
			t.Errorf("the store file holds %q", form)
		}
	}
}
