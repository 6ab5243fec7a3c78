package nomademu_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers/nomad/nomademu"
)

// Variables through the official client: create, read (index header), update with check-and-set and its
// conflict, list by prefix with paging, delete with and without cas, and a missing path.
func TestVariables(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	vars := client(t, s).Variables()

	created, wm, err := vars.CheckedCreate(&api.Variable{Path: "nomad/jobs/web", Items: api.VariableItems{"db_password": "pw1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created.Items["db_password"] != "pw1" || created.Namespace != "default" || created.CreateIndex == 0 ||
		created.ModifyIndex != created.CreateIndex || wm.LastIndex != created.ModifyIndex || created.CreateTime == 0 {
		t.Fatalf("CheckedCreate = %+v, meta %+v", created, wm)
	}
	// A second checked create of the same path conflicts and carries the current variable.
	_, _, err = vars.CheckedCreate(&api.Variable{Path: "nomad/jobs/web", Items: api.VariableItems{"x": "y"}}, nil)
	var cas api.ErrCASConflict
	if !errors.As(err, &cas) || cas.Conflict.ModifyIndex != created.ModifyIndex || cas.Conflict.Items["db_password"] != "pw1" {
		t.Fatalf("second CheckedCreate: %v", err)
	}
	got, qm, err := vars.Read("nomad/jobs/web", nil)
	if err != nil || got.Items["db_password"] != "pw1" || qm.LastIndex != created.ModifyIndex {
		t.Fatalf("Read: %v %+v %+v", err, got, qm)
	}
	// Rotation: an update with the right index succeeds, with a stale one conflicts.
	got.Items["db_password"] = "pw2"
	updated, _, err := vars.CheckedUpdate(got, nil)
	if err != nil || updated.ModifyIndex <= created.ModifyIndex || updated.CreateIndex != created.CreateIndex || updated.Items["db_password"] != "pw2" {
		t.Fatalf("CheckedUpdate: %v %+v", err, updated)
	}
	got.Items["db_password"] = "lost"
	if _, _, err := vars.CheckedUpdate(got, nil); !errors.As(err, &cas) || cas.Conflict.Items["db_password"] != "pw2" || cas.CheckIndex != created.ModifyIndex {
		t.Fatalf("stale CheckedUpdate: %v", err)
	}
	// A plain update ignores the index.
	if _, _, err := vars.Update(&api.Variable{Path: "nomad/jobs/web", Items: api.VariableItems{"db_password": "pw3"}}, nil); err != nil {
		t.Fatal(err)
	}
	s.SetVariable("", "nomad/jobs/api", map[string]string{"k": "v"})
	s.SetVariable("", "other/thing", map[string]string{"k": "v"})
	list, qm, err := vars.PrefixList("nomad/jobs", nil)
	if err != nil || len(list) != 2 || list[0].Path != "nomad/jobs/api" || list[1].Path != "nomad/jobs/web" || qm.LastIndex != s.Index() {
		t.Fatalf("PrefixList: %v %+v", err, list)
	}
	page, qm, err := vars.List(&api.QueryOptions{PerPage: 2})
	if err != nil || len(page) != 2 || qm.NextToken != "default.other/thing" {
		t.Fatalf("first page: %v %+v %q", err, page, qm.NextToken)
	}
	rest, qm, err := vars.List(&api.QueryOptions{PerPage: 2, NextToken: qm.NextToken})
	if err != nil || len(rest) != 1 || rest[0].Path != "other/thing" || qm.NextToken != "" {
		t.Fatalf("second page: %v %+v", err, rest)
	}
	items, _, err := vars.GetVariableItems("nomad/jobs/web", nil)
	if err != nil || items["db_password"] != "pw3" {
		t.Fatalf("GetVariableItems: %v %v", err, items)
	}
	// Deletes: a checked delete with a stale index conflicts; the right one and a plain one succeed.
	cur, _ := s.Variable("", "nomad/jobs/web")
	if _, err := vars.CheckedDelete("nomad/jobs/web", cur.ModifyIndex-1, nil); !errors.As(err, &cas) {
		t.Fatalf("stale CheckedDelete: %v", err)
	}
	if _, err := vars.CheckedDelete("nomad/jobs/web", cur.ModifyIndex, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := vars.Delete("nomad/jobs/api", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := vars.Read("nomad/jobs/web", nil); !errors.Is(err, api.ErrVariablePathNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
	if v, _, err := vars.Peek("nomad/jobs/web", nil); err != nil || v != nil {
		t.Fatalf("Peek of a missing path: %v %v", err, v)
	}
	if _, err := vars.CheckedDelete("nomad/jobs/gone", 7, nil); !errors.As(err, &cas) || cas.Conflict.ModifyIndex != 0 {
		t.Fatalf("checked delete of a missing path: %v", err)
	}
}

// Refusals as the agent answers them, ACLs, faults, and a blocking read woken by a write.
func TestVariableErrorsAndFaults(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	vars := client(t, s).Variables()
	for _, c := range []struct {
		v    *api.Variable
		code int
		text string
	}{
		{&api.Variable{Path: "a", Items: api.VariableItems{}}, 400, "variable missing required Items object"},
		{&api.Variable{Path: "bad path!", Items: api.VariableItems{"k": "v"}}, 500, "invalid path"},
		{&api.Variable{Path: "nomad", Items: api.VariableItems{"k": "v"}}, 500, "reserved top-level"},
		{&api.Variable{Path: "nomad/other", Items: api.VariableItems{"k": "v"}}, 500, "only paths at"},
		{&api.Variable{Path: "big", Items: api.VariableItems{"k": strings.Repeat("x", nomademu.MaxVariableSize)}}, 500, "64KiB"},
	} {
		_, _, err := vars.Create(c.v, nil)
		if statusCode(err) != c.code || !strings.Contains(err.Error(), c.text) {
			t.Errorf("Create %q: %v, want %d %q", c.v.Path, err, c.code, c.text)
		}
	}
	s.SetVariable("", "nomad/jobs/web", map[string]string{"k": "v"})
	s.DenyVariable("", "nomad/jobs/web")
	if _, _, err := vars.Read("nomad/jobs/web", nil); statusCode(err) != 403 {
		t.Errorf("denied read: %v", err)
	}
	if list, _, err := vars.List(nil); err != nil || len(list) != 0 {
		t.Errorf("a denied variable is left out of lists: %v %v", err, list)
	}

	s.SetVariable("", "db", map[string]string{"k": "v"})
	s.Fail(1, nomademu.RateLimited)
	if _, _, err := vars.Read("db", nil); statusCode(err) != 429 {
		t.Errorf("rate limited: %v", err)
	}
	s.Fail(1, nomademu.ServerError)
	if _, _, err := vars.Read("db", nil); statusCode(err) != 500 {
		t.Errorf("server error: %v", err)
	}
	s.Fail(1, nomademu.Timeout)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, _, err := vars.Read("db", (&api.QueryOptions{}).WithContext(ctx))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}

	// A blocking read returns once a write passes its index (whether the write lands before or while it waits).
	cur, _ := s.Variable("", "db")
	done := make(chan *api.Variable)
	idx := s.Index()
	go func() {
		v, _, _ := vars.Read("db", &api.QueryOptions{WaitIndex: idx, WaitTime: time.Minute})
		done <- v
	}()
	s.SetVariable("", "db", map[string]string{"k": "rotated"})
	if v := <-done; v == nil || v.Items["k"] != "rotated" || v.ModifyIndex <= cur.ModifyIndex {
		t.Errorf("blocking read: %+v", v)
	}

	acl := nomademu.New(nomademu.Options{Token: "secret-token"})
	defer acl.Close()
	if _, _, err := client(t, acl).Variables().Read("db", nil); statusCode(err) != 403 {
		t.Errorf("without the ACL token: %v", err)
	}
}
