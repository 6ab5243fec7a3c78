package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestStringMasksEveryEncoding(t *testing.T) {
	var s Set
	const secret = "p@ss w/rd:+=?&"
	s.Register(secret)
	s.RegisterBasic("bot", "t0ken-Value")
	for _, echoed := range []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		url.UserPassword("u", secret).String(),
		hex.EncodeToString([]byte(secret)),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("bot:t0ken-Value")),
		`{"password":"p@ss w/rd:+=?\u0026"}`,
	} {
		got := s.String("server said: " + echoed + " (end)")
		if !strings.Contains(got, Mask) || strings.Contains(got, "w/rd") || strings.Contains(got, "t0ken") {
			t.Errorf("%q → %q", echoed, got)
		}
	}
	if got := s.String("nothing to hide"); got != "nothing to hide" {
		t.Errorf("unrelated text changed: %q", got)
	}
}

func TestShortValuesNotRegistered(t *testing.T) {
	var s Set
	s.Register("ab")
	if got := s.String("abc"); got != "abc" {
		t.Errorf("a 2-byte value was masked: %q", got)
	}
}

func TestErrorKeepsIdentity(t *testing.T) {
	var s Set
	s.Register("hunter22")
	err := s.Error(&fs.PathError{Op: "open", Path: "/x/hunter22", Err: fs.ErrNotExist})
	if strings.Contains(err.Error(), "hunter22") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v (is ErrNotExist: %t)", err, errors.Is(err, fs.ErrNotExist))
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Error("errors.As lost the type")
	}
}

func TestBody(t *testing.T) {
	var s Set
	s.Register("SECRETVALUE")
	body := []byte("<html>\x1b[31mAuthorization: SECRETVALUE\r\n" + strings.Repeat("x", 1000))
	got := s.Body(body, 64)
	if strings.Contains(got, "SECRET") || strings.ContainsAny(got, "\x1b\r\n") || len(got) > 64+len("…") {
		t.Errorf("Body = %q", got)
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("a cut body does not say so: %q", got)
	}
}

func TestHandler(t *testing.T) {
	var s Set
	s.Register("sekrit-token")
	var buf bytes.Buffer
	log := slog.New(s.Handler(slog.NewJSONHandler(&buf, nil))).With("source", "url with sekrit-token")
	log.Info("fetch failed: sekrit-token", "err", errors.New("401: sekrit-token"),
		slog.Group("req", "auth", "Bearer sekrit-token"), "n", 3)
	if strings.Contains(buf.String(), "sekrit") {
		t.Errorf("log holds the secret: %s", buf.String())
	}
	if strings.Count(buf.String(), Mask) != 4 || !strings.Contains(buf.String(), `"n":3`) {
		t.Errorf("log: %s", buf.String())
	}
}

func TestJSONWithoutHTMLEscaping(t *testing.T) {
	var s Set
	const secret = `a"<b>&c\d`
	s.Register(secret)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", secret) // not through s.Handler: the encoded form
	if got := s.String(buf.String()); strings.Contains(got, `<b>`) {
		t.Errorf("slog's JSON encoding of the value is not masked: %s", got)
	}
}

func TestRegisterPEM(t *testing.T) {
	var s Set
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\n" +
		"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" +
		"QyNTUxOQAAACBm3ZkN6eXyz0f0S2kZ8l5mDoW2pZ0vY3c9oZb4AAAAJh4nYq6eJ2KugAA\n" +
		"AAtzc2gtZWQyNTUxOQ==\n" +
		"-----END OPENSSH PRIVATE KEY-----\n"
	s.RegisterPEM(key)
	lines := strings.Split(key, "\n")
	for _, piece := range []string{key, lines[1], lines[2], lines[3], lines[1] + lines[2] + lines[3]} {
		if got := s.String("ssh: " + piece + " :end"); strings.Contains(got, "b3BlbnNz") || strings.Contains(got, "QyNTUxOQAAACBm") ||
			strings.Contains(got, "AAAAtzc2gtZWQyNTUxOQ==") {
			t.Errorf("%q → %q", piece, got)
		}
	}
	if got := s.String("-----BEGIN OPENSSH PRIVATE KEY-----"); got != "-----BEGIN OPENSSH PRIVATE KEY-----" {
		t.Errorf("the armor line alone was masked: %q", got)
	}
}

func TestWriter(t *testing.T) {
	var s Set
	s.Register("canary-0xC0FFEE")
	var buf bytes.Buffer
	w := s.Writer(&buf)
	for _, rec := range []string{"plain line\n", "leak: canary-0xC0FFEE\n"} {
		n, err := w.Write([]byte(rec))
		if err != nil || n != len(rec) {
			t.Fatalf("Write(%q) = %d, %v", rec, n, err)
		}
	}
	if got := buf.String(); got != "plain line\nleak: "+Mask+"\n" {
		t.Errorf("written: %q", got)
	}
}

func TestBodyCleansTerminalEscapes(t *testing.T) {
	var s Set
	got := s.Body([]byte("\x1b[1;31mDenied\x1b[0m\r\n\x1b]0;title\x07\tfor  you\xff\xfe!"), 100)
	if got != "Denied for you !" {
		t.Errorf("Body = %q", got)
	}
	// Invalid UTF-8 in the middle does not cut the text short.
	long := strings.Repeat("ab\xffcd ", 50)
	if got := s.Body([]byte(long), 64); len(got) < 50 || !strings.HasSuffix(got, "…") {
		t.Errorf("Body = %q", got)
	}
}
