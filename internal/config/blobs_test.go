package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
)

// The blob store's settings have defaults that fit the default store, and
// mistakes name their key.
func TestBlobSettings(t *testing.T) {
	c, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Streams.BlobsMaxBytes != "512MB" || c.Streams.BlobsGrace != 24*time.Hour || c.Pipeline.InlineMaxBytes != "1MB" || c.Pipeline.BlobGCInterval != time.Hour {
		t.Errorf("defaults: %+v %+v", c.Streams, c.Pipeline)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"streams: {blobs_max_bytes: '0'}\n", "streams.blobs_max_bytes: must be a positive size"},
		{"nats: {embedded: {max_store: 10GB}}\nstreams: {blobs_max_bytes: 2GB}\n", "letters+parked+journey+audit+blobs max bytes add up to more than 90%"},
		{"pipeline: {inline_max_bytes: 64MB}\n", "pipeline.inline_max_bytes: must not exceed streams.max_msg_size"},
		{"pipeline: {inline_max_bytes: lots}\n", "pipeline.inline_max_bytes: must be a positive size"},
		{"streams: {blobs_grace: 10s}\n", "streams.blobs_grace: must be at least 1m"},
		{"pipeline: {blob_gc_interval: 1ms}\n", "pipeline.blob_gc_interval: must be at least 1s"},
	} {
		err := load(t, base+tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
