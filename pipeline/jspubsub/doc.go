// Package jspubsub is a Watermill Publisher and Subscriber over the nats.go
// jetstream API, bound to pre-provisioned durable pull consumers.
//
// # Why not watermill-nats
//
// watermill-nats v2.1.3 defaults to ephemeral consumers, which the server
// deletes about 5 s after the hub stops (a restart then replays or skips
// letters), and its JetStream handler dereferences a nil message when a
// message's headers cannot be unmarshalled, which crashes the process. Its
// publisher has no timeout and sets no Nats-Msg-Id. This package binds only to
// durable consumers that already exist (SubscriberConfig.Consumer), never
// creates or deletes one on that path, and delivers messages whose headers
// cannot be read with empty metadata instead of crashing. (See
// docs shared/domain/reliability.md §1.2, §2.4.)
//
// # Publishing
//
// Publisher.Publish sends all messages of a call pipelined
// (PublishMsgAsync) and waits for every PubAck within PublisherConfig.Timeout;
// nil means every message is stored. Nats-Msg-Id is the metadata value of
// that name or else the message UUID, so a resend inside the stream's
// duplicate window is stored once (a duplicate PubAck counts as success).
// Metadata NATS cannot carry unchanged (invalid header names, line breaks,
// surrounding white space) and server-interpreted Nats-* headers are
// rejected with an error naming the key.
//
// # Ordering model
//
// SubscriberConfig.OrderKey assigns each message a key (for example its
// letter thread). Within one subscription, messages of a key are emitted one
// at a time in stream order: the next is emitted only after the previous was
// acked, and a nacked message is emitted again before any later message of
// its key. Messages of different keys flow concurrently, so one failing
// thread holds back only itself (Subscriber.Held shows what waits). A nil
// OrderKey gives full concurrency up to MaxInFlight. Order is per
// subscription: several replicas reading the same consumer each see a part
// of the stream, so strict per-key order across replicas needs a single
// active reader per consumer.
//
// # Ack, nack and shutdown
//
// Ack is a confirmed ack (DoubleAck), retried on timeout; if it still fails
// the server redelivers the message after AckWait (at-least-once). Nack does
// not Nak to JetStream: the same message is emitted again, as a fresh
// *message.Message, after NackDelay. Every message held (emitted or waiting
// behind its key) gets InProgress every AckWait/3 so the server does not
// redeliver it elsewhere during long handler retries. Each message's context
// carries DeliveryInfo (see Delivery) and is cancelled when it is acked or
// nacked.
//
// When Subscribe's ctx is cancelled or Close is called, pulling stops (the
// nats.go buffer is drained into the subscription), nothing new is emitted,
// and handlers get CloseTimeout to ack or nack what they hold; then the
// contexts of unfinished messages are cancelled and every message still held
// — emitted but unacked, nacked, or never emitted — is Nak'd in stream order
// so another replica or the next start gets it at once. Nothing is acked on
// shutdown and nothing is dropped. Then the output channel is closed.
//
// # Reconnects
//
// nats.go's Messages iterator re-issues pull requests after a reconnect;
// the durable consumer on the server keeps its position, so consumption
// resumes without recreating the consumer or replaying acked messages.
// Redeliveries of a message the subscription still holds are dropped (the
// held copy is acked by stream sequence). A copy of a message whose ack the
// server confirmed moments ago is not handled again but acked again: a
// message that waited in nats.go's buffer past AckWait while every slot was
// busy is sent again, and that copy may arrive after the buffered one was
// handled; or, should the server lose an ack it confirmed, a copy left
// unacked would hold one of the consumer's MaxAckPending places for ever.
//
// A consumer deleted under a subscription ends it, and its channel closes,
// unless SubscriberConfig.Recreate is set: then Recreate makes it again
// (the caller chooses where it starts) and the subscription binds to it
// and goes on.
package jspubsub
