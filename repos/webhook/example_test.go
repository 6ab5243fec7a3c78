package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/berth-dev/berth/repos/webhook"
)

func Example() {
	secret := []byte("shared-secret")
	poke := make(chan string, 1)
	rcv, err := webhook.New([]webhook.Hook{{Source: "app", Kind: webhook.GitHub, Secret: secret}},
		func(source string) {
			select { // never block the handler
			case poke <- source:
			default:
			}
		},
		webhook.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle(webhook.PathPrefix, rcv)

	body := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(body))
	req := httptest.NewRequest(http.MethodPost, "/hooks/app", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code, <-poke)
	// Output: 202 app
}

// OnEvent hands the preview loop a pull-request event: only its kind and number, to wake the loop.
func ExampleOptions_onEvent() {
	secret := []byte("shared-secret")
	wake := make(chan webhook.Event, 1)
	rcv, err := webhook.New([]webhook.Hook{{Source: "app", Kind: webhook.GitHub, Secret: secret}},
		func(string) {},
		webhook.Options{Logger: slog.New(slog.DiscardHandler), OnEvent: func(ev webhook.Event) {
			select {
			case wake <- ev:
			default:
			}
		}})
	if err != nil {
		fmt.Println(err)
		return
	}
	body := `{"action":"synchronize","number":42,"pull_request":{"number":42}}`
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(body))
	req := httptest.NewRequest(http.MethodPost, "/hooks/app", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	w := httptest.NewRecorder()
	rcv.ServeHTTP(w, req)
	ev := <-wake
	fmt.Println(w.Code, ev.Source, ev.Kind, ev.Change)
	// Output: 202 app change 42
}
