package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// checkStoreOpened refuses a store whose streams or durable consumers the
// server left closed. nats-server skips, with a warning, what its key
// cannot decrypt (a wrong key_file, or a store rekeyed by `samhub store
// rekey` opened with the old key). The hub's start then failed on creating
// the stream with the server's "error creating store for stream", which
// names neither the key nor the stream, or went on without a consumer the
// server had skipped: so the start stops here, naming them, before
// anything is written.
func checkStoreOpened(srv *server.Server, storeDir string) error {
	onDisk, err := storedFiles(storeDir)
	if err != nil || len(onDisk) == 0 {
		return err
	}
	jsz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true})
	if err != nil {
		return fmt.Errorf("embedded NATS: list streams: %w", err)
	}
	open := map[string]bool{}
	for _, a := range jsz.AccountDetails {
		for _, st := range a.Streams {
			open[a.Name+"/"+st.Name] = true
			for _, c := range st.Consumer {
				open[a.Name+"/"+st.Name+" > "+c.Name] = true
			}
		}
	}
	var closed []string
	for name, meta := range onDisk {
		if open[name] {
			continue
		}
		if _, err := os.Stat(meta); err != nil {
			continue // gone since: an ephemeral consumer the server removed
		}
		closed = append(closed, name[strings.IndexByte(name, '/')+1:])
	}
	if len(closed) == 0 {
		return nil
	}
	slices.Sort(closed)
	return &SettingError{Key: "nats.embedded.key_file", Msg: fmt.Sprintf(
		"the store %s holds streams or consumers the server could not open (%s): the key does not decrypt them, or they are damaged; "+
			"check that key_file (or key_env) names the key the store was written with (after `samhub store rekey`, the new key); "+
			"the hub does not start, so nothing is written over them", storeDir, strings.Join(closed, ", "))}
}

// storedFiles finds the streams and consumers in a JetStream store
// directory by their metadata files: "account/stream" and
// "account/stream > consumer", each to its file.
func storedFiles(storeDir string) (map[string]string, error) {
	out := map[string]string{}
	streams, err := filepath.Glob(filepath.Join(storeDir, "jetstream", "*", "streams", "*", server.JetStreamMetaFile))
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.store_dir: %w", err)
	}
	for _, m := range streams {
		dir := filepath.Dir(m)
		name := filepath.Base(filepath.Dir(filepath.Dir(dir))) + "/" + filepath.Base(dir)
		out[name] = m
		consumers, _ := filepath.Glob(filepath.Join(dir, "obs", "*", server.JetStreamMetaFile))
		for _, c := range consumers {
			out[name+" > "+filepath.Base(filepath.Dir(c))] = c
		}
	}
	return out, nil
}

// storedStreams lists the streams of a store directory, sorted.
func storedStreams(storeDir string) ([]string, error) {
	files, err := storedFiles(storeDir)
	var out []string
	for name := range files {
		if !strings.Contains(name, " > ") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, err
}
