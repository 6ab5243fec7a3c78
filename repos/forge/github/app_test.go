package github_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

const (
	appID   = 1234
	instID  = 5678
	botUser = "berth-app[bot]"
)

var appKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

func pemOf(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// clock is a fake clock shared by the forge and the emulator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is a forge.Observer that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	requests  []string // "op code"
	remaining []int
}

func (r *recorder) Request(kind, op string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, fmt.Sprintf("%s %s %d", kind, op, code))
}

func (r *recorder) RateLimit(kind string, remaining int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remaining = append(r.remaining, remaining)
}

func (r *recorder) take() ([]string, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q, rem := r.requests, r.remaining
	r.requests, r.remaining = nil, nil
	return q, rem
}

func appSetup(t *testing.T) (*githubemu.Server, *clock, *recorder, *github.Forge) {
	t.Helper()
	emu := githubemu.New("acme", "shop")
	t.Cleanup(emu.Close)
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	emu.SetNow(clk.Now)
	emu.AddApp(appID, &appKeys()[0].PublicKey)
	emu.AddInstallation(instID, appID, botUser)
	emu.AddCollaborator(botUser, "write")
	rec := &recorder{}
	f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Now: clk.Now, Observer: rec,
		App: &github.App{ID: appID, InstallationID: instID, PrivateKey: pemOf(appKeys()[0])}})
	if err != nil {
		t.Fatal(err)
	}
	return emu, clk, rec, f
}

func TestAppTokenMintedReusedRefreshed(t *testing.T) {
	emu, clk, rec, f := appSetup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	if _, err := f.Get(ctx(t), n); err != nil {
		t.Fatal(err)
	}
	if self, err := f.Self(ctx(t)); err != nil || self != botUser {
		t.Fatalf("self %q %v", self, err)
	}
	if emu.Minted() != 1 {
		t.Fatalf("minted %d", emu.Minted())
	}
	if q, _ := rec.take(); len(q) != 3 || q[0] != "github token 201" || q[1] != "github get 200" {
		t.Fatalf("observed %q", q)
	}
	// Reused while more than 5 minutes are left.
	clk.Add(54 * time.Minute)
	if _, err := f.Get(ctx(t), n); err != nil || emu.Minted() != 1 {
		t.Fatalf("at 54m: %v, minted %d", err, emu.Minted())
	}
	// Refreshed 5 minutes before expires_at, while the old one still works.
	clk.Add(time.Minute + time.Second)
	if _, err := f.Get(ctx(t), n); err != nil || emu.Minted() != 2 {
		t.Fatalf("at 55m: %v, minted %d", err, emu.Minted())
	}
	// A short-lived token (settable in the emulator) is refreshed by its own expires_at.
	emu.SetTokenTTL(10 * time.Minute)
	clk.Add(time.Hour)
	if _, err := f.Get(ctx(t), n); err != nil || emu.Minted() != 3 {
		t.Fatalf("after an hour: %v, minted %d", err, emu.Minted())
	}
	clk.Add(5*time.Minute + time.Second)
	if _, err := f.Get(ctx(t), n); err != nil || emu.Minted() != 4 {
		t.Fatalf("a 10-minute token after 5m: %v, minted %d", err, emu.Minted())
	}
	// A token living less than 10 minutes is replaced half-way, not on every call.
	emu.SetTokenTTL(4 * time.Minute)
	clk.Add(6 * time.Minute)
	for _, step := range []struct {
		after  time.Duration
		minted int
	}{{0, 5}, {time.Minute, 5}, {time.Minute + time.Second, 6}} {
		clk.Add(step.after)
		if _, err := f.Get(ctx(t), n); err != nil || emu.Minted() != step.minted {
			t.Fatalf("a 4-minute token, %s later: %v, minted %d", step.after, err, emu.Minted())
		}
	}
}

func TestAppTokenRefreshedOn401(t *testing.T) {
	emu, _, rec, f := appSetup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	if _, err := f.Get(ctx(t), n); err != nil {
		t.Fatal(err)
	}
	emu.RevokeAppTokens()
	rec.take()
	if _, err := f.Get(ctx(t), n); err != nil || emu.Minted() != 2 {
		t.Fatalf("after a revocation: %v, minted %d", err, emu.Minted())
	}
	if q, _ := rec.take(); strings.Join(q, ",") != "github get 401,github token 201,github get 304" {
		t.Fatalf("observed %q", q)
	}
	// A POST is sent again with its body.
	sha := strings.Repeat("d", 40)
	emu.Inject(githubemu.Fault{Kind: githubemu.Fault401, Match: "/statuses/"})
	if err := f.SetStatus(ctx(t), forge.Status{SHA: sha, Context: "berth/x", State: forge.StatusSuccess,
		Description: "ok"}); err != nil {
		t.Fatal(err)
	}
	if emu.StatusCount(sha) != 1 || emu.Minted() != 3 {
		t.Fatalf("statuses %d, minted %d", emu.StatusCount(sha), emu.Minted())
	}
	// Only once: a second 401 is the answer.
	emu.Inject(githubemu.Fault{Kind: githubemu.Fault401, Match: "/pulls/", Count: 2})
	_, err := f.Get(ctx(t), n)
	checkErr(t, err, 401, false)
	if emu.Minted() != 4 {
		t.Fatalf("minted %d", emu.Minted())
	}
}

func TestAppBadKeyRefused(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("not a key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Bytes: []byte("garbage")})} {
		if _, err := github.New(github.Options{Repository: "acme/shop",
			App: &github.App{ID: appID, InstallationID: instID, PrivateKey: key}}); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
	for _, o := range []github.Options{
		{Repository: "acme/shop", Token: token, App: &github.App{ID: appID, InstallationID: instID,
			PrivateKey: pemOf(appKeys()[0])}},
		{Repository: "acme/shop", App: &github.App{InstallationID: instID, PrivateKey: pemOf(appKeys()[0])}},
		{Repository: "acme/shop", App: &github.App{ID: appID, PrivateKey: pemOf(appKeys()[0])}},
	} {
		if _, err := github.New(o); err == nil {
			t.Errorf("%+v accepted", o.App)
		}
	}

	// A well-formed key that is not the app's: GitHub refuses the JWT with 401, which is not temporary.
	emu, clk, _, _ := appSetup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	other, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Now: clk.Now,
		App: &github.App{ID: appID, InstallationID: instID, PrivateKey: pemOf(appKeys()[1])}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Get(ctx(t), n)
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.Status != 401 || fe.Temporary || fe.Op != "mint installation token" ||
		errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("wrong key: %v", err)
	}
	// An installation that is not there: a 404 that is neither temporary nor a "not found" of the pull request.
	gone, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Now: clk.Now,
		App: &github.App{ID: appID, InstallationID: 1, PrivateKey: pemOf(appKeys()[0])}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gone.Get(ctx(t), n)
	if !errors.As(err, &fe) || fe.Status != 404 || fe.Temporary || errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("no installation: %v", err)
	}
	// A clock 20 minutes ahead of GitHub's makes a JWT issued in the future: refused.
	skew := &clock{t: clk.Now().Add(20 * time.Minute)}
	ahead, _ := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Now: skew.Now,
		App: &github.App{ID: appID, InstallationID: instID, PrivateKey: pemOf(appKeys()[0])}})
	if _, err := ahead.Get(ctx(t), n); !errors.As(err, &fe) || fe.Status != 401 || fe.Temporary {
		t.Fatalf("skewed clock: %v", err)
	}
}

// The installation token never shows in an error, even when the host echoes it.
func TestAppTokenMasked(t *testing.T) {
	const minted = "ghs_echoedInstallationToken0123456789abcd"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/access_tokens") {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"token":%q,"expires_at":%q,"permissions":{},"repository_selection":"all"}`, minted,
				time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"message":"bad header %s"}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	f, err := github.New(github.Options{BaseURL: srv.URL, Repository: "acme/shop",
		App: &github.App{ID: appID, InstallationID: instID, PrivateKey: pemOf(appKeys()[0])}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Get(ctx(t), 1)
	checkErr(t, err, 500, true)
	if strings.Contains(err.Error(), minted) || !strings.Contains(err.Error(), "bad header") {
		t.Fatalf("%v", err)
	}
}

// Every request is observed: an idle poll as a 304, with the rate limit remaining.
func TestObserver(t *testing.T) {
	emu := githubemu.New("acme", "shop")
	t.Cleanup(emu.Close)
	emu.AddToken(token, "berth-bot")
	rec := &recorder{}
	f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Token: token, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	emu.Open(githubemu.PR{Title: "one", HeadRef: "x"})
	l, err := f.ListOpen(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	q, rem := rec.take()
	if strings.Join(q, ",") != "github list_open 200" || len(rem) != 1 || rem[0] != emu.Remaining() {
		t.Fatalf("first listing: %q %v (quota %d)", q, rem, emu.Remaining())
	}
	if _, err := f.ListOpen(ctx(t), l.ETag); err != nil {
		t.Fatal(err)
	}
	q, rem = rec.take()
	if strings.Join(q, ",") != "github list_open 304" || len(rem) != 1 || rem[0] != emu.Remaining() {
		t.Fatalf("idle poll: %q %v", q, rem)
	}
	emu.SetQuota(41)
	emu.Inject(githubemu.Fault{Kind: githubemu.Fault500})
	if _, err := f.Get(ctx(t), 1); err == nil {
		t.Fatal("no error")
	}
	if q, _ := rec.take(); strings.Join(q, ",") != "github get 500" {
		t.Fatalf("a 500: %q", q)
	}
	if _, err := f.Get(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if _, rem := rec.take(); len(rem) != 1 || rem[0] != 40 {
		t.Fatalf("remaining %v", rem)
	}
	emu.Close()
	if _, err := f.Get(ctx(t), 1); err == nil {
		t.Fatal("no error")
	}
	if q, _ := rec.take(); strings.Join(q, ",") != "github get 0" {
		t.Fatalf("a transport failure: %q", q)
	}
}

// Concurrent first calls share one mint.
func TestAppTokenMintedOnceConcurrently(t *testing.T) {
	emu, _, _, f := appSetup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Get(ctx(t), n)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if emu.Minted() != 1 {
		t.Fatalf("minted %d", emu.Minted())
	}
}
