package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// IsUnavailable tells a store that did not answer (try again later) from
// one that answered with a refusal (trying again changes nothing), through
// the wrapping a sink puts around it.
func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nats.ErrNoResponders, true},
		{nats.ErrTimeout, true},
		{context.DeadlineExceeded, true},
		{jetstream.ErrNoStreamResponse, true},
		{fmt.Errorf("outbox: %w", nats.ErrDisconnected), true},
		{&jetstream.APIError{Code: 503, Description: "JetStream system temporarily unavailable"}, true},
		{nats.ErrMaxPayload, false},
		{jetstream.ErrKeyRevisionMismatch, false},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{errors.New("state key \"a b\": must match [A-Za-z0-9_=.-]+"), false},
		{nil, false},
	} {
		if got := broker.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
