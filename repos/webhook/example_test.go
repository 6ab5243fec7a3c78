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
