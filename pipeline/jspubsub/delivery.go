package jspubsub

import (
	"context"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
)

// DeliveryInfo holds the JetStream facts about one delivery of a message.
type DeliveryInfo struct {
	Stream       string
	Consumer     string
	Subject      string
	StreamSeq    uint64
	ConsumerSeq  uint64
	NumDelivered uint64 // 1 on the first delivery
	NumPending   uint64 // messages not yet delivered to the consumer
	Timestamp    time.Time
}

type deliveryKey struct{}

// Delivery returns the delivery facts a Subscriber attached to msg.
func Delivery(msg *message.Message) (DeliveryInfo, bool) {
	if msg == nil {
		return DeliveryInfo{}, false
	}
	d, ok := msg.Context().Value(deliveryKey{}).(DeliveryInfo)
	return d, ok
}

func withDelivery(ctx context.Context, d DeliveryInfo) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

// received is a JetStream message decoded once; every emission to the
// handler is a fresh copy of it.
type received struct {
	msg      jetstream.Msg
	uuid     string
	metadata message.Metadata
	info     DeliveryInfo
}

// decode reads a JetStream message. It never fails on headers: nats.go hands
// over a message whose header block it could not parse with nil headers (the
// defect that crashes watermill-nats is a nil message after such an error),
// and here that message is delivered with empty metadata and the UUID
// "seq-<stream sequence>", so the handler finds its required metadata
// missing and parks the letter instead of losing it. Only unreadable delivery metadata
// (a reply subject that is not a JetStream ack subject) is an error: such a
// message cannot be acknowledged at all.
func decode(m jetstream.Msg) (*received, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	r := &received{
		msg:      m,
		metadata: message.Metadata{},
		info: DeliveryInfo{
			Stream:       md.Stream,
			Consumer:     md.Consumer,
			Subject:      m.Subject(),
			StreamSeq:    md.Sequence.Stream,
			ConsumerSeq:  md.Sequence.Consumer,
			NumDelivered: md.NumDelivered,
			NumPending:   md.NumPending,
			Timestamp:    md.Timestamp,
		},
	}
	h := m.Headers()
	for k, vs := range h {
		// Server-interpreted headers (Nats-Expected-Stream, …) stay out of
		// metadata so a handler can republish the message unchanged.
		if len(vs) > 0 && (k == MsgIDKey || !isReserved(k)) {
			// A repeated header keeps its first value: metadata is a flat
			// map, and the first is what nats.Header.Get returns.
			r.metadata[k] = vs[0]
		}
	}
	r.uuid = r.metadata[MsgIDKey]
	if r.uuid == "" {
		r.uuid = "seq-" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	return r, nil
}

// emit makes a fresh Watermill message for one emission.
func (r *received) emit(ctx context.Context) (*message.Message, context.CancelFunc) {
	wm := message.NewMessage(r.uuid, r.msg.Data())
	for k, v := range r.metadata {
		wm.Metadata[k] = v
	}
	mctx, cancel := context.WithCancel(withDelivery(ctx, r.info))
	wm.SetContext(mctx)
	return wm, cancel
}
