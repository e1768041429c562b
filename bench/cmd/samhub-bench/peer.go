package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/bench/loopsim"
	"github.com/samhub/samhub/pipeline/broker"
)

// peerResult is the reference engine (Benthos v4.27.0, bench/peer) on the
// same flow: read the same XDIS91 files, parse the XML, publish to a
// JetStream with the hub's storage settings; a second pipeline consumes
// and posts each letter to the same case-system simulator.
type peerResult struct {
	Engine              string  `json:"engine"`
	Letters             int     `json:"letters"`
	IngestLettersPerS   float64 `json:"ingest_letters_per_s"`
	EndToEndLettersPerS float64 `json:"e2e_letters_per_s"`
	Sinks               int     `json:"sinks"`
}

// peerRoot holds what streams mode allows only at the root.
const peerRoot = `http: { enabled: false }
logger: { level: WARN }
metrics: { none: {} }
`

const peerIngest = `input:
  file:
    paths: [ "{{IN}}/*.xml" ]
    scanner: { to_the_end: {} }
pipeline:
  threads: 2
  processors:
    - xml: { operator: to_json }
output:
  nats_jetstream:
    urls: [ "{{NATS}}" ]
    subject: peer.letters
    max_in_flight: 256
`

const peerDeliver = `input:
  nats_jetstream:
    urls: [ "{{NATS}}" ]
    subject: peer.letters
    durable: peer-deliver
    deliver: all
    max_ack_pending: 1024
output:
  http_client:
    url: "{{CASESYS}}/peer/letters"
    verb: POST
    headers:
      Content-Type: application/json
      X-Letter-Id: '${! json("Emessage.ClinicalEmail.Letter.Identifier") }'
    max_in_flight: 64
    oauth2:
      enabled: true
      client_key: samhub
      client_secret: case-secret
      token_url: "{{CASESYS}}/oauth2/token"
`

func runPeer(ctx context.Context, bin, dir string, gen *letters, n int) (peerResult, error) {
	res := peerResult{Engine: "benthos v4.27.0 (bench/peer)", Letters: n, Sinks: 1}
	in := filepath.Join(dir, "peer-in")
	if err := os.MkdirAll(in, 0o700); err != nil {
		return res, err
	}
	for i := range n {
		name, data, _ := gen.letter(9, i)
		if err := os.WriteFile(filepath.Join(in, name), data, 0o600); err != nil {
			return res, err
		}
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	srv, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: filepath.Join(dir, "peer-js"), MaxStore: 16 << 30, Listen: "127.0.0.1:" + strconv.Itoa(port)}, slog.New(slog.DiscardHandler))
	if err != nil {
		return res, err
	}
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		return res, fmt.Errorf("peer: nats-server not ready")
	}
	nc, err := srv.Connect()
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	cs, err := loopsim.StartCaseSystem()
	if err != nil {
		return res, err
	}
	defer cs.Close()
	subst := func(s string) string {
		for k, v := range map[string]string{"{{IN}}": in, "{{NATS}}": srv.ToolsURL(), "{{CASESYS}}": cs.URL} {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	root, ingest, deliver := filepath.Join(dir, "peer-root.yaml"), filepath.Join(dir, "peer-ingest.yaml"), filepath.Join(dir, "peer-deliver.yaml")
	if err := os.WriteFile(root, []byte(peerRoot), 0o600); err != nil {
		return res, err
	}
	if err := os.WriteFile(ingest, []byte(subst(peerIngest)), 0o600); err != nil {
		return res, err
	}
	if err := os.WriteFile(deliver, []byte(subst(peerDeliver)), 0o600); err != nil {
		return res, err
	}
	fresh := func() (jetstream.Stream, error) {
		_ = js.DeleteStream(ctx, "PEER")
		return js.CreateStream(ctx, jetstream.StreamConfig{Name: "PEER", Subjects: []string{"peer.letters"}, Storage: jetstream.FileStorage,
			MaxBytes: 8 << 30, Discard: jetstream.DiscardNew})
	}

	// 1. Ingest alone: files → XML → JetStream.
	st, err := fresh()
	if err != nil {
		return res, err
	}
	secs, err := runUntil(bin, []string{"-c", root, "streams", ingest}, func() int {
		info, err := st.Info(ctx)
		if err != nil {
			return 0
		}
		return int(info.State.Msgs)
	}, n)
	if err != nil {
		return res, fmt.Errorf("peer ingest: %w", err)
	}
	res.IngestLettersPerS = float64(n) / secs

	// 2. End to end: both pipelines at once, until the simulator has all.
	if _, err = fresh(); err != nil {
		return res, err
	}
	secs, err = runUntil(bin, []string{"-c", root, "streams", ingest, deliver}, func() int { return cs.Peer.Count() }, n)
	if err != nil {
		return res, fmt.Errorf("peer end to end: %w", err)
	}
	res.EndToEndLettersPerS = float64(n) / secs
	return res, nil
}

// runUntil starts the peer and measures from the first counted letter to
// n, so the engine's start-up time is not charged to its throughput.
func runUntil(bin string, args []string, count func() int, n int) (float64, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	var start time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for {
		c := count()
		if c > 0 && start.IsZero() {
			start = time.Now()
		}
		if c >= n {
			return time.Since(start).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d letters after 10 minutes", c, n)
		}
		select {
		case <-done:
			if c2 := count(); c2 < n {
				return 0, fmt.Errorf("peer exited (%v) with %d of %d letters", waitErr, c2, n)
			}
		default:
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
