package clouddns_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dnsv1 "google.golang.org/api/dns/v1"
	"google.golang.org/api/googleapi"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/clouddns"
	"github.com/berth-dev/berth/providers/endpoint/clouddns/clouddnsemu"
	"github.com/berth-dev/berth/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const name = "web.example.com."

func members(w0, w1 int) []endpoint.Member {
	return []endpoint.Member{
		{Target: "gcp", Addresses: []string{"192.0.2.20", "192.0.2.21", "2001:db8::1"}, Weight: w1},
		{Target: "aws", Addresses: []string{lbHost}, Weight: w0},
	}
}

func TestSettings(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"project": "p"}, `setting "zone" is required`},
		{map[string]any{"zone": "z"}, `setting "project" is required`},
		{map[string]any{"project": "p", "zone": "z", "zoneId": "Z1"}, `unknown setting "zoneId"`},
		{map[string]any{"project": "p", "zone": "z", "endpoint": "localhost:80"}, `"endpoint" "localhost:80" is not an http(s) URL`},
		{map[string]any{"project": "p", "zone": "z", "credentialsFile": "/nonexistent/key.json"}, "settings.credentialsFile"},
	} {
		_, err := endpoint.New(schema.Target{Name: "d", Type: clouddns.Type, Settings: c.settings}, endpoint.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, providers.ErrPermanent) {
			t.Errorf("settings %v: %v; want a permanent error saying %s", c.settings, err, c.want)
		}
	}
	s, err := clouddns.ParseSettings(schema.Target{Settings: map[string]any{"project": "p", "zone": "z",
		"endpoint": "http://127.0.0.1:9"}})
	if err != nil || s != (clouddns.Settings{Project: "p", Zone: "z", Endpoint: "http://127.0.0.1:9/"}) {
		t.Errorf("ParseSettings = %+v, %v", s, err)
	}
}

// TestLiveWhenSetReturns: changes stay pending for a while; Set waits until done, so clients see the new members
// the moment it returns; a ctx that ends first ends the wait.
func TestLiveWhenSetReturns(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{Pending: 4})
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(0, 100)); err != nil {
		t.Fatal(err)
	}
	if got := e.lookup(t, name, 5); len(got) != 5 || !slices.Contains([]string{"192.0.2.20", "192.0.2.21"}, got[0]) {
		t.Fatalf("right after Set, clients got %v; want the gcp member", got)
	}
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(100, 0)); err != nil {
		t.Fatal(err)
	}
	if got := e.lookup(t, name, 5); len(got) != 5 || got[0] != lbHost {
		t.Fatalf("right after Set, clients got %v; want %s", got, lbHost)
	}
	polls := 0
	for _, r := range e.emu.Requests() {
		if r.Method == http.MethodGet && strings.Contains(r.Path, "/changes/") {
			polls++
		}
	}
	if polls < 2*5 {
		t.Errorf("%d changes.get polls for two changes pending 4 polls each; want at least 10", polls)
	}

	e.emu.SetPending(1 << 30)
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := e.r.Set(c, owner, name, time.Minute, members(50, 50))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Set of a change that never gets done, ctx of 100ms: %v; want the deadline, naming %s", err, name)
	}
}

// TestTransientFaults: throttling and 5xx of every call are retried and the Set passes.
func TestTransientFaults(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{Pending: 1})
	e.emu.Fail(clouddnsemu.OpGetZone, clouddnsemu.RateLimited)
	e.emu.Fail(clouddnsemu.OpListRRSets, clouddnsemu.RateLimited, clouddnsemu.Unavailable)
	e.emu.Fail(clouddnsemu.OpCreateChange, clouddnsemu.RateLimited, clouddnsemu.Internal)
	e.emu.Fail(clouddnsemu.OpGetChange, clouddnsemu.Unavailable, clouddnsemu.Fault{Status: 403,
		Reason: "rateLimitExceeded", Message: "Quota exceeded for quota metric 'Write requests'"})
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(30, 70)); err != nil {
		t.Fatalf("Set through transient faults: %v", err)
	}
	rec, err := e.r.Get(ctx(t), owner, name)
	if err != nil || rec == nil || len(rec.Members) != 2 {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	if n := len(e.emu.Changes()); n != 1 {
		t.Errorf("%d changes made; want one", n)
	}
}

// TestLastingFault: a fault that outlasts the attempts is returned, naming the name and the call, never a
// credential.
func TestLastingFault(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{})
	for range 20 {
		e.emu.Fail(clouddnsemu.OpCreateChange, clouddnsemu.RateLimited)
	}
	err := e.r.Set(ctx(t), owner, name, time.Minute, members(30, 70))
	var ge *googleapi.Error
	if err == nil || !errors.As(err, &ge) || ge.Code != 429 {
		t.Fatalf("Set under lasting throttling: %v; want the 429", err)
	}
	msg := err.Error()
	for _, want := range []string{name, "changes.create", "after 6 tries"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	for _, secret := range []string{"PRIVATE KEY", "ya29.", "Bearer"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q holds a credential (%s)", msg, secret)
		}
	}
	var key struct {
		PrivateKeyID string `json:"private_key_id"`
	}
	if json.Unmarshal([]byte(e.key), &key) != nil || strings.Contains(msg, key.PrivateKeyID) {
		t.Errorf("error %q names the key", msg)
	}
	if n := len(e.emu.Changes()); n != 0 {
		t.Errorf("%d changes made; want none", n)
	}

	e.emu.Fail(clouddnsemu.OpListRRSets, clouddnsemu.Fault{Status: 403, Reason: "forbidden",
		Message: "Forbidden: dns.resourceRecordSets.list"})
	err = e.r.Set(ctx(t), owner, name, time.Minute, members(30, 70))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "roles/dns.admin") {
		t.Fatalf("Set when the API says forbidden: %v; want a permanent error naming %s and the role", err, name)
	}
}

// TestWrongZone: a zone setting that names no managed zone (say, its DNS name) is permanent and says so.
func TestWrongZone(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{})
	key := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(key, []byte(e.key), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := clouddns.NewRouter(schema.Target{Name: "gcp-main", Type: clouddns.Type, Settings: map[string]any{
		"project": project, "zone": "example.com", "credentialsFile": key, "endpoint": e.api.URL}}, endpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Get(ctx(t), owner, name)
	var ge *googleapi.Error
	if !errors.Is(err, providers.ErrPermanent) || !errors.As(err, &ge) || ge.Code != 404 ||
		!strings.Contains(err.Error(), "not its DNS name") {
		t.Fatalf("Get with a wrong zone: %v", err)
	}
}

// TestLostResponse: the change takes effect but its answer is lost (a 503 after it); the retry finds the sets in
// place (409), reads again, finds nothing to change and waits for the change to be done.
func TestLostResponse(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{Pending: 3})
	e.emu.Fail(clouddnsemu.OpCreateChange, clouddnsemu.Fault{Status: 503, Reason: "backendError", Message: "Backend Error", After: true})
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(0, 100)); err != nil {
		t.Fatalf("Set with a lost answer: %v", err)
	}
	if n := len(e.emu.Changes()); n != 1 {
		t.Errorf("%d changes made; want one", n)
	}
	if got := e.lookup(t, name, 3); len(got) != 3 || got[0] != "192.0.2.20" && got[0] != "192.0.2.21" {
		t.Fatalf("right after Set, clients got %v", got)
	}
}

// TestRace: another writer puts a record at a per-member name between berth's read and its change: the change
// fails (409 alreadyExists), berth reads again and, the name being berth's, replaces it.
func TestRace(t *testing.T) {
	var e *env
	var race sync.Once
	armed := make(chan struct{})
	e = newEnv(t, clouddnsemu.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-armed:
				if r.Method == http.MethodPost {
					race.Do(func() {
						if err := e.emu.Plant(&dnsv1.ResourceRecordSet{Name: "aws._berth." + name, Type: "A", Ttl: 5,
							Rrdatas: []string{"203.0.113.9"}}); err != nil {
							t.Error(err)
						}
					})
				}
			default:
			}
			h.ServeHTTP(w, r)
		})
	})
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(0, 100)[:1]); err != nil {
		t.Fatal(err)
	}
	close(armed)
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(50, 50)); err != nil {
		t.Fatalf("Set racing another writer: %v", err)
	}
	rec, err := e.r.Get(ctx(t), owner, name)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := rec.Member("aws"); !ok || !slices.Equal(m.Addresses, []string{lbHost}) {
		t.Fatalf("aws reads back %+v", m)
	}
	var made []string
	for _, c := range e.emu.Changes() {
		made = append(made, fmt.Sprintf("planted=%v +%d -%d", c.Planted, len(c.Additions), len(c.Deletions)))
	}
	// The first Set (name, gcp A and AAAA, ownership), the planted set, the second Set: the name's CNAME replaced,
	// the planted A deleted, aws's CNAME added.
	if want := []string{"planted=false +4 -0", "planted=true +1 -0", "planted=false +2 -2"}; !slices.Equal(made, want) {
		t.Errorf("changes %v; want %v", made, want)
	}
}

// TestForeignMemberName: a record at a per-member name of a free name is not berth's: ErrNotOwned, untouched.
func TestForeignMemberName(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{})
	stray := &dnsv1.ResourceRecordSet{Name: "gcp._berth." + name, Type: "A", Ttl: 5, Rrdatas: []string{"203.0.113.9"}}
	if err := e.emu.Plant(stray); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(0, 100)); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Fatalf("Set over a foreign per-member name: %v; want ErrNotOwned", err)
	}
	if n := len(e.emu.Changes()); n != 1 {
		t.Errorf("%d changes; want only the planted one", n)
	}
}

// TestOwnership: the TXT record and what it guards; Names lists the instance's names.
func TestOwnership(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{PageSize: 2}) // every list is paged
	if err := e.r.Set(ctx(t), owner, name, time.Minute, members(0, 100)); err != nil {
		t.Fatal(err)
	}
	var txt *dnsv1.ResourceRecordSet
	for _, s := range e.emu.RecordSets() {
		if s.Name == "_berth-owner."+name {
			txt = s
		}
	}
	want := `"heritage=berth,berth.dev/instance=berth,berth.dev/environment=prod,berth.dev/workload=web"`
	if txt == nil || txt.Type != "TXT" || !slices.Equal(txt.Rrdatas, []string{want}) || txt.Ttl != 60 {
		t.Fatalf("ownership record %+v; want TXT %s, ttl 60", txt, want)
	}
	staging := endpoint.Owner{Instance: "berth", Environment: "staging", Workload: "api"}
	if err := e.r.Set(ctx(t), staging, "api.example.com", time.Minute, members(100, 0)); err != nil {
		t.Fatal(err)
	}
	other := endpoint.Owner{Instance: "other", Environment: "prod", Workload: "web"}
	if err := e.r.Set(ctx(t), other, "x.example.com", time.Minute, members(100, 0)); err != nil {
		t.Fatal(err)
	}
	// An ownership record someone else wrote, and a TXT that is not one.
	if err := e.emu.Plant(&dnsv1.ResourceRecordSet{Name: "_berth-owner.y.example.com.", Type: "TXT", Ttl: 60,
		Rrdatas: []string{`"hello"`}}); err != nil {
		t.Fatal(err)
	}
	names, err := e.r.Names(ctx(t), "berth")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[name] != owner || names["api.example.com."] != staging {
		t.Fatalf("Names = %v", names)
	}
	if !slices.ContainsFunc(e.emu.Requests(), func(r clouddnsemu.Request) bool { return strings.Contains(r.Query, "pageToken=") }) {
		t.Error("no list asked for a second page")
	}
	if _, err := e.r.Get(ctx(t), owner, "y.example.com"); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Get of a name whose ownership record is not berth's: %v", err)
	}
	if err := e.r.Delete(ctx(t), owner, name); err != nil {
		t.Fatal(err)
	}
	for _, s := range e.emu.RecordSets() {
		if strings.HasSuffix(s.Name, name) {
			t.Errorf("after Delete, %s %s is left", s.Name, s.Type)
		}
	}
	ch := e.emu.Changes()
	last := ch[len(ch)-1]
	if d := last.Deletions; len(last.Additions) != 0 || len(d) != 5 || d[len(d)-1].Name != "_berth-owner."+name {
		t.Errorf("Delete's change: %d additions, deletions %v; want the 5 sets (name, aws CNAME, gcp A and AAAA, ownership), the ownership last", len(last.Additions), d)
	}
}

func TestBadNames(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{})
	for _, n := range []string{"example.com", "web.example.org", "example.com.evil.net"} {
		err := e.r.Set(ctx(t), owner, n, time.Minute, members(0, 100))
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "not a name inside the zone") {
			t.Errorf("Set %s: %v; want a permanent error", n, err)
		}
	}
	err := e.r.Set(ctx(t), owner, name, time.Minute, []endpoint.Member{{Target: "aws", Addresses: []string{"a.example", "b.example"}, Weight: 1}})
	if !errors.Is(err, endpoint.ErrBadMember) || !errors.Is(err, providers.ErrPermanent) {
		t.Errorf("Set of a member with two host names: %v", err)
	}
}

// TestGoldenChanges: the bodies the SDK sends for a first Set, a weight shift and a Delete.
func TestGoldenChanges(t *testing.T) {
	e := newEnv(t, clouddnsemu.Options{})
	steps := []struct {
		file string
		do   func() error
	}{
		{"set.json", func() error { return e.r.Set(ctx(t), owner, name, time.Minute, members(100, 0)) }},
		{"shift.json", func() error { return e.r.Set(ctx(t), owner, name, time.Minute, members(40, 60)) }},
		{"same.json", func() error { return e.r.Set(ctx(t), owner, name, time.Minute, members(40, 60)) }},
		{"delete.json", func() error { return e.r.Delete(ctx(t), owner, name) }},
	}
	seen := 0
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.file, err)
		}
		bodies := []json.RawMessage{}
		reqs := e.emu.Requests()
		for _, r := range reqs[seen:] {
			if r.Method == http.MethodPost {
				bodies = append(bodies, r.Body)
			}
		}
		seen = len(reqs)
		got, err := json.MarshalIndent(bodies, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", s.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the change bodies sent differ from the golden file:\n%s\nwant:\n%s", s.file, got, want)
		}
	}
}
