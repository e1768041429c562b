package broker_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

func writeKey(t *testing.T, dir, name, key string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startStore starts the embedded server on dir with the key in keyFile.
func startStore(t *testing.T, dir, keyFile string) (*broker.Embedded, jetstream.JetStream, error) {
	t.Helper()
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: dir, KeyFile: keyFile}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); emb.Server.Shutdown(); emb.Server.WaitForShutdown() })
	return emb, js, nil
}

func stop(emb *broker.Embedded) { emb.Server.Shutdown(); emb.Server.WaitForShutdown() }

// A store written under one key is copied under another with every
// stream (an empty one too, which nats-server's in-place rewrap cannot
// open), every message and every durable consumer's place; the old key
// then opens nothing, and the hub's start says so instead of creating the
// streams again.
func TestRekeyKeepsEveryStreamAndConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := t.TempDir()
	store := filepath.Join(base, "nats")
	oldKey := writeKey(t, base, "old.key", "the-old-key-of-some-length")
	newKey := writeKey(t, base, "new.key", "the-new-key-of-some-length")

	emb, js, err := startStore(t, store, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	letters, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LETTERS", Subjects: []string{"letters.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 600<<10) // more than one snapshot chunk
	for i, body := range []string{"one", big, "three", "four", "five"} {
		if _, err := js.Publish(ctx, "letters."+string(rune('a'+i)), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := letters.DeleteMsg(ctx, 3); err != nil { // a gap in the sequence
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EMPTY", Subjects: []string{"empty.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "state", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	cons, err := letters.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "casesys", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	if len(got) != 2 {
		t.Fatalf("fetched %d messages, want 2", len(got))
	}
	if err := got[0].DoubleAck(ctx); err != nil { // acked; the second stays pending
		t.Fatal(err)
	}
	before, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop(emb)

	res, err := broker.Rekey(ctx, broker.EmbeddedOptions{StoreDir: store, KeyFile: oldKey}, newKey, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.Streams {
		names = append(names, s.Name)
	}
	if want := "EMPTY KV_state LETTERS"; strings.Join(names, " ") != want {
		t.Errorf("rekeyed %q, want %q", names, want)
	}
	if _, err := os.Stat(res.OldStore); err != nil {
		t.Errorf("the old store is not kept: %v", err)
	}

	emb, js, err = startStore(t, store, newKey)
	if err != nil {
		t.Fatalf("the new key does not open the rekeyed store: %v", err)
	}
	letters, err = js.Stream(ctx, "LETTERS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := letters.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 4 || info.State.FirstSeq != 1 || info.State.LastSeq != 5 {
		t.Errorf("LETTERS holds %d messages %d-%d, want 4 in 1-5", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	}
	if m, err := letters.GetMsg(ctx, 2); err != nil || string(m.Data) != big {
		t.Errorf("message 2 after the rekey is not as written: %v", err)
	}
	if _, err := letters.GetMsg(ctx, 3); err == nil {
		t.Error("the deleted message 3 came back")
	}
	if _, err := js.Stream(ctx, "EMPTY"); err != nil {
		t.Errorf("the empty stream: %v", err)
	}
	kv, err = js.KeyValue(ctx, "state")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
		t.Errorf("the key-value entry after the rekey: %v", err)
	}
	cons, err = letters.Consumer(ctx, "casesys")
	if err != nil {
		t.Fatalf("the durable consumer is gone: %v", err)
	}
	after, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.AckFloor.Stream != before.AckFloor.Stream || after.Delivered.Stream != before.Delivered.Stream || after.AckFloor.Stream != 1 {
		t.Errorf("consumer at delivered %d, ack floor %d; before the rekey %d, %d",
			after.Delivered.Stream, after.AckFloor.Stream, before.Delivered.Stream, before.AckFloor.Stream)
	}
	stop(emb)

	// The old key no longer opens it, and the start refuses rather than
	// making the streams again over their directories.
	_, _, err = startStore(t, store, oldKey)
	if err == nil || !strings.Contains(err.Error(), "nats.embedded.key_file") || !strings.Contains(err.Error(), "LETTERS") {
		t.Fatalf("the old key on the rekeyed store: %v; want a refusal naming key_file and the streams", err)
	}
	if _, _, err := startStore(t, store, newKey); err != nil {
		t.Fatalf("the refused start changed the store: %v", err)
	}
}

// A durable consumer the server cannot open (here its metadata damaged)
// stops the start: the hub would make it again from the stream's start and
// send every letter to its destination once more.
func TestAConsumerTheServerCannotOpenStopsTheStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := filepath.Join(t.TempDir(), "nats")
	emb, js, err := startStore(t, store, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LETTERS", Subjects: []string{"letters.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "casesys", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	stop(emb)
	meta := filepath.Join(store, "jetstream", "$G", "streams", "LETTERS", "obs", "casesys", "meta.inf")
	if err := os.WriteFile(meta, []byte("not a consumer"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = startStore(t, store, "")
	if err == nil || !strings.Contains(err.Error(), "LETTERS > casesys") {
		t.Fatalf("start with a consumer the server skipped: %v; want a refusal naming it", err)
	}
}

// A rekey that cannot be done leaves the store as it was: an empty new
// key, an unreadable one, a directory holding no store.
func TestARefusedRekeyLeavesTheStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := t.TempDir()
	store := filepath.Join(base, "nats")
	key := writeKey(t, base, "old.key", "the-old-key-of-some-length")
	emb, js, err := startStore(t, store, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LETTERS", Subjects: []string{"letters.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "letters.a", []byte("one")); err != nil {
		t.Fatal(err)
	}
	stop(emb)
	log := slog.New(slog.DiscardHandler)
	for name, c := range map[string]struct{ store, newKey, want string }{
		"empty new key":   {store, writeKey(t, base, "empty.key", ""), "is empty"},
		"missing new key": {store, filepath.Join(base, "nope.key"), "new key"},
		"no store":        {filepath.Join(base, "elsewhere"), key, "holds no streams"},
	} {
		if _, err := broker.Rekey(ctx, broker.EmbeddedOptions{StoreDir: c.store, KeyFile: key}, c.newKey, log); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	if _, err := os.Stat(store + ".rekey"); !os.IsNotExist(err) {
		t.Errorf("a refused rekey left %s.rekey: %v", store, err)
	}
	_, js, err = startStore(t, store, key)
	if err != nil {
		t.Fatalf("the old key no longer opens the store: %v", err)
	}
	if st, err := js.Stream(ctx, "LETTERS"); err != nil {
		t.Fatal(err)
	} else if m, err := st.GetMsg(ctx, 1); err != nil || string(m.Data) != "one" {
		t.Errorf("the letter after refused rekeys: %v", err)
	}
}
