package medcompeer

import (
	"encoding/json"
	"net/http"
)

// Handler serves the peer's records read-only under /_sim/ (see the
// package documentation).
func (p *Peer) Handler() http.Handler {
	mux := http.NewServeMux()
	list := func(get func() any) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(map[string]any{"results": get()})
		}
	}
	mux.HandleFunc("GET /_sim/letters", list(func() any { return nonNil(p.Letters()) }))
	mux.HandleFunc("GET /_sim/acks", list(func() any { return nonNil(p.Acks()) }))
	mux.HandleFunc("GET /_sim/sent", list(func() any { return nonNil(p.SentLetters()) }))
	return mux
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
